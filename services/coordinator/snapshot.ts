/**
 * The coordinator's snapshot, so a restart costs the active runs' events,
 * not the whole history: a log position and the runs still active there.
 * On start each of those runs is folded from its own subjects up to that
 * position, and the log is followed from the next sequence; finished runs'
 * millions of old events are never read.
 */
import { Kvm, type KV } from "@nats-io/kv";
import { StorageType } from "@nats-io/jetstream";
import { decodeValue, encodeValue } from "../../libs/codec/index.ts";
import { DECIDING, type RunState } from "../../libs/core/index.ts";
import { BUCKETS, KEYS } from "../../libs/names/index.ts";
import { foldRun, replicasFor, type Nats } from "../../libs/nats/index.ts";
import type { Logger } from "../../libs/log/index.ts";

export type Snapshot = {
  readonly seq: number;
  readonly runs: readonly string[];
  /** Each scheduled DAG's newest scheduled interval end (see scheduler.ts); absent in snapshots from before schedules. */
  readonly scheduled?: Readonly<Record<string, number>>;
};

export type Restored = {
  /** The log position the snapshot was taken at (0: none; read the whole log). */
  readonly seq: number;
  /** Each active run's state and the last sequence of its coordinator subject, as of `seq`. */
  readonly runs: Map<string, { state: RunState; coordSeq: number }>;
  /** Events read to restore them. */
  readonly folded: number;
  /** The schedules' positions as of `seq`. */
  readonly scheduled: Readonly<Record<string, number>>;
};

export async function snapshotBucket(nats: Nats): Promise<KV> {
  return new Kvm(nats.js).create(BUCKETS.coordinator, { history: 1, storage: StorageType.File, replicas: replicasFor(nats.nc) });
}

export async function saveSnapshot(kv: KV, snapshot: Snapshot): Promise<void> {
  await kv.put(KEYS.coordinatorSnapshot, encodeValue(snapshot));
}

function isSnapshot(value: unknown): value is Snapshot {
  const v = value as Snapshot;
  return typeof v === "object" && v !== null && Number.isInteger(v.seq) && Array.isArray(v.runs) && v.runs.every((r) => typeof r === "string") &&
    (v.scheduled === undefined || (typeof v.scheduled === "object" && v.scheduled !== null && Object.values(v.scheduled).every(Number.isFinite)));
}

export async function restore(nats: Nats, kv: KV, log: Logger): Promise<Restored> {
  const entry = await kv.get(KEYS.coordinatorSnapshot).catch(() => null);
  let snapshot: unknown = null;
  try {
    snapshot = entry?.value?.length ? decodeValue(entry.value) : null;
  } catch {
    snapshot = null;
  }
  const runs = new Map<string, { state: RunState; coordSeq: number }>();
  if (!isSnapshot(snapshot)) {
    if (entry?.value?.length) log.warn("the coordinator snapshot is unreadable; reading the whole log instead");
    return { seq: 0, runs, folded: 0, scheduled: {} };
  }
  let folded = 0;
  const queue = [...snapshot.runs];
  // A few runs at a time: each is its own consumer.
  await Promise.all(Array.from({ length: Math.min(8, queue.length) }, async () => {
    for (let runId = queue.shift(); runId !== undefined; runId = queue.shift()) {
      const run = await foldRun(nats, runId, snapshot.seq + 1, log, DECIDING);
      folded += run.folded;
      if (run.state) runs.set(runId, { state: run.state, coordSeq: run.coordSeq });
    }
  }));
  return { seq: snapshot.seq, runs, folded, scheduled: snapshot.scheduled ?? {} };
}
