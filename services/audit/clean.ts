/**
 * `mapflow db clean` (Airflow's `airflow db clean`): finished runs that ended
 * before a date are archived, the archive is replayed and checked against
 * the live rows, and only then are the runs taken out of the log, their task
 * logs, work, stored values, artifacts and run-scoped `ctx.kv` keys, and the read model (by a RunsPurged event
 * the projector folds, appended before the purge so a rebuild of a log whose
 * purge was cut short drops them as well).
 */
import Database from "better-sqlite3";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BadInputError } from "../../libs/errors.ts";
import { artifactObjects, kvKeys, objects, runIds as runIdNames, STREAMS, subjects } from "../../libs/names/index.ts";
import { appendEvent, artifactStore, lastLogSeq, readRecords, taskKvBucket, valueStore, type LogRecord, type Nats } from "../../libs/nats/index.ts";
import { runDigests } from "../../libs/store/digest.ts";
import { readArchive, writeArchive } from "./archive.ts";
import { replayToFile } from "./replay.ts";

export type CleanOptions = {
  /** Runs that ended before this time (epoch ms). */
  before: number;
  /** Where to archive them; null: purge without an archive (the operator said so). */
  archive: string | null;
  dryRun: boolean;
  /** The live projection. */
  dbPath: string;
};

export type CleanedRun = { runId: string; dagId: string; state: string; endedAt: number; events: number };
export type CleanReport = {
  runs: CleanedRun[]; archived: number; objectsDeleted: number; artifactsDeleted: number; kvKeysDeleted: number; dryRun: boolean; archive: string | null;
};

/** A RunsPurged event names at most this many runs (its size stays far under a message's limit). */
const RUNS_PER_EVENT = 1000;
/** How long to wait for the projector to reach the log's end before choosing runs from it. */
const CATCH_UP_MS = 30_000;

async function caughtUp(nats: Nats, db: Database.Database): Promise<void> {
  const last = await lastLogSeq(nats);
  const applied = () => (db.prepare("SELECT last_seq FROM projection WHERE id = 1").pluck().get() as number | undefined) ?? 0;
  const deadline = Date.now() + CATCH_UP_MS;
  while (applied() < last) {
    if (Date.now() > deadline) {
      throw new BadInputError(`the projection ${db.name} is at seq ${applied()} but the log is at ${last}; is the projector running? db clean chooses runs from an up-to-date projection`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * Each DAG's newest scheduled run, which clean keeps (as Airflow's db clean
 * keeps each DAG's last scheduled run): a coordinator that ever has to fold
 * the whole log again (its snapshot lost) finds where the schedule stands from
 * it, instead of requesting the purged intervals again.
 */
export function newestScheduledRuns(runIds: Iterable<string>): Set<string> {
  const newest = new Map<string, { runId: string; stamp: string }>();
  for (const runId of runIds) {
    const parsed = runIdNames.parseScheduled(runId);
    if (!parsed) continue;
    const known = newest.get(parsed.dagId);
    if (!known || parsed.stamp > known.stamp) newest.set(parsed.dagId, { runId, stamp: parsed.stamp });
  }
  return new Set([...newest.values()].map((n) => n.runId));
}

async function* recordsOf(nats: Nats, runIds: readonly string[]): AsyncGenerator<LogRecord> {
  for (const runId of runIds) yield* readRecords(nats, { filter: subjects.run(runId) });
}

export async function cleanRuns(nats: Nats, options: CleanOptions): Promise<CleanReport> {
  const live = new Database(options.dbPath, { readonly: true, fileMustExist: true });
  try {
    await caughtUp(nats, live);
    const scheduled = live.prepare("SELECT run_id FROM dag_runs WHERE run_id LIKE '%\\_\\_scheduled\\_\\_%' ESCAPE '\\'").pluck().all() as string[];
    const keep = newestScheduledRuns(scheduled);
    const rows = live
      .prepare<[number], { run_id: string; dag_id: string; state: string; ended_at: number }>(
        "SELECT run_id, dag_id, state, ended_at FROM dag_runs WHERE state IN ('success', 'failed', 'cancelled') AND ended_at < ? ORDER BY ended_at, run_id",
      )
      .all(options.before)
      .filter((r) => !keep.has(r.run_id));
    const runs: CleanedRun[] = [];
    for (const r of rows) {
      const info = await nats.jsm.streams.info(STREAMS.events, { subjects_filter: subjects.run(r.run_id) });
      const events = Object.values(info.state.subjects ?? {}).reduce((a, b) => a + b, 0);
      runs.push({ runId: r.run_id, dagId: r.dag_id, state: r.state, endedAt: r.ended_at, events });
    }
    const report: CleanReport = { runs, archived: 0, objectsDeleted: 0, artifactsDeleted: 0, kvKeysDeleted: 0, dryRun: options.dryRun, archive: options.archive };
    if (options.dryRun || runs.length === 0) return report;
    const ids = runs.map((r) => r.runId);

    if (options.archive) {
      report.archived = await writeArchive(options.archive, recordsOf(nats, ids));
      await checkArchive(options.archive, live, ids);
    }
    for (let i = 0; i < ids.length; i += RUNS_PER_EVENT) {
      await appendEvent(nats, { type: "RunsPurged", runIds: ids.slice(i, i + RUNS_PER_EVENT), before: options.before, archive: options.archive, at: Date.now() });
    }
    const store = await valueStore(nats);
    const stored = (await store.list()).map((o) => o.name);
    const artifacts = await artifactStore(nats);
    const files = (await artifacts.list()).map((o) => o.name);
    const kv = await taskKvBucket(nats);
    for (const runId of ids) {
      await nats.jsm.streams.purge(STREAMS.events, { filter: subjects.run(runId) });
      await nats.jsm.streams.purge(STREAMS.logs, { filter: subjects.runLogs(runId) });
      await nats.jsm.streams.purge(STREAMS.work, { filter: subjects.runWork(runId) });
      const prefixes = objects.ofRun(runId);
      for (const name of stored.filter((n) => prefixes.some((p) => n.startsWith(p)))) {
        if (await store.delete(name)) report.objectsDeleted++;
      }
      for (const name of files.filter((n) => n.startsWith(artifactObjects.ofRun(runId)))) {
        if (await artifacts.delete(name)) report.artifactsDeleted++;
      }
      // DAG-scoped keys stay: other runs share them.
      for await (const key of await kv.keys(kvKeys.ofRun(runId))) {
        await kv.purge(key);
        report.kvKeysDeleted++;
      }
    }
    return report;
  } finally {
    live.close();
  }
}

/** The archive must replay to exactly the live rows of the runs it holds; otherwise nothing is purged. */
async function checkArchive(archive: string, live: Database.Database, ids: readonly string[]): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "mapflow-clean-"));
  try {
    const file = join(dir, "archive.sqlite");
    await replayToFile(readArchive(archive), file);
    const replayed = new Database(file, { readonly: true });
    try {
      const expected = runDigests(live, ids);
      const actual = runDigests(replayed, ids);
      for (const id of ids) {
        if (expected.get(id) !== actual.get(id)) {
          throw new Error(`the archive ${archive} does not replay to the live state of run ${id} (digest ${actual.get(id)?.slice(0, 16)} against ${expected.get(id)?.slice(0, 16)}); nothing was purged, and the archive is kept for inspection`);
        }
      }
    } finally {
      replayed.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
