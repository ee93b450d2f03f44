/**
 * `mapflow audit verify`: rebuilds the read model from the log in memory, up
 * to the sequence the live projection has applied, checks the log itself on
 * the way (libs/core/audit.ts), and compares the two table by table, with a
 * digest of each run's rows.
 */
import Database from "better-sqlite3";
import { LogAudit, type Finding } from "../../libs/core/index.ts";
import { isRunEvent } from "../../libs/events/index.ts";
import { readRecords, type Nats } from "../../libs/nats/index.ts";
import { ReadModel } from "../../libs/store/index.ts";
import { firstDifference, runDigests, type Difference } from "../../libs/store/digest.ts";
import { ProjectionFold } from "../projector/fold.ts";
import { foldRecords } from "./replay.ts";

export type RunDigests = { readonly runId: string; readonly live: string | null; readonly rebuilt: string | null };

export type VerifyReport = {
  /** The log position both sides were compared at: the live projection's checkpoint. */
  readonly seq: number;
  readonly events: number;
  readonly ms: number;
  readonly runs: readonly RunDigests[];
  /** The first row that differs, table by table; absent when the projection equals the rebuild. */
  readonly difference?: Difference;
  /** What the log itself shows wrong. */
  readonly findings: readonly Finding[];
  readonly ok: boolean;
};

export async function verifyProjection(nats: Nats, dbPath: string): Promise<VerifyReport> {
  const live = new Database(dbPath, { readonly: true, fileMustExist: true });
  const rebuilt = new ReadModel(":memory:");
  try {
    // One read transaction: the live rows stay as they were at its checkpoint while the log is folded.
    live.exec("BEGIN");
    const seq = (live.prepare("SELECT last_seq FROM projection WHERE id = 1").pluck().get() as number | undefined) ?? 0;
    const fold = new ProjectionFold(rebuilt, { keepFinished: true });
    const audit = new LogAudit();
    const replayed = await foldRecords(readRecords(nats, { to: seq }), fold, {}, (at, event) => {
      if (isRunEvent(event)) audit.check(at, fold.stateOf(event.runId), event);
    });
    const difference = firstDifference(rebuilt.db, live);
    const liveDigests = runDigests(live);
    const rebuiltDigests = runDigests(rebuilt.db);
    const ids = [...new Set([...liveDigests.keys(), ...rebuiltDigests.keys()])].sort();
    const runs = ids.map((runId) => ({ runId, live: liveDigests.get(runId) ?? null, rebuilt: rebuiltDigests.get(runId) ?? null }));
    live.exec("COMMIT");
    return { seq, events: replayed.events, ms: replayed.ms, runs, difference, findings: audit.findings, ok: !difference && audit.findings.length === 0 };
  } finally {
    live.close();
    rebuilt.close();
  }
}
