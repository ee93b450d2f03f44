/** Reading what tasks wrote through `ctx.log` (the MF_LOGS stream, one subject per try). */
import { JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";
import { nanos } from "@nats-io/transport-node";
import { decodeLogLine } from "../codec/index.ts";
import type { LogLine } from "../core/logline.ts";
import { STREAMS, subjects } from "../names/index.ts";
import type { Nats } from "./connect.ts";

/**
 * The largest stored line (the stream's max_msg_size). A worker truncates a
 * longer one, marked, rather than lose it: one huge line must not cost the
 * try its other lines.
 */
export const MAX_LOG_LINE_BYTES = 64 * 1024;

/** How long log lines are kept: long enough to look into last month's failures, not so long that chatty tasks fill the disk. */
export const LOG_MAX_AGE_MS = 30 * 24 * 60 * 60_000;

/**
 * Keeps task log lines for `maxAgeMs` from now on (older ones age out), when
 * the MF_LOGS stream keeps them for another time; returns whether it changed.
 * Only the coordinator's role (and admin) may change the stream.
 */
export async function setLogRetention(nats: Nats, maxAgeMs: number): Promise<boolean> {
  const info = await nats.jsm.streams.info(STREAMS.logs);
  const maxAge = nanos(maxAgeMs);
  if (info.config.max_age === maxAge) return false;
  await nats.jsm.streams.update(STREAMS.logs, { ...info.config, max_age: maxAge });
  return true;
}

/** The lines one try wrote, in order. */
export type TryLogLines = { readonly try: number; readonly lines: LogLine[] };

/**
 * The stored log lines of each try of one instance (or of one try), tries in
 * order; [] when it never logged. Reads up to what is stored when called, so
 * a try still writing cannot keep the reader going.
 */
export async function readTryLogs(nats: Nats, runId: string, taskId: string, mapIndex: number, tryNumber?: number): Promise<TryLogLines[]> {
  const filter = tryNumber === undefined ? subjects.instanceLogs(runId, taskId, mapIndex) : subjects.tryLog(runId, taskId, mapIndex, tryNumber);
  const stored = await storedLines(nats, filter);
  if (stored === 0) return [];
  const byTry = new Map<number, LogLine[]>();
  const consumer = await nats.js.consumers.get(STREAMS.logs, { filter_subjects: filter });
  const messages = await consumer.consume({ max_messages: Math.min(stored, 1024) });
  let read = 0;
  try {
    for await (const msg of messages) {
      const n = subjects.tryOfLog(msg.subject);
      const lines = byTry.get(n) ?? [];
      byTry.set(n, lines);
      lines.push(decodeLogLine(msg.data));
      // Nothing newer pending also ends it: a line may have aged out since it was counted.
      if (++read >= stored || msg.info.pending === 0) break;
    }
  } finally {
    await messages.close();
  }
  return [...byTry].sort(([a], [b]) => a - b).map(([n, lines]) => ({ try: n, lines }));
}

/** How many lines the stream holds for a filter now (a wildcard has no last-by-subject lookup, but stream info counts per subject). */
async function storedLines(nats: Nats, filter: string): Promise<number> {
  try {
    const info = await nats.jsm.streams.info(STREAMS.logs, { subjects_filter: filter });
    return Object.values(info.state.subjects ?? {}).reduce((sum, n) => sum + n, 0);
  } catch (err) {
    // A store no service of this version has started yet: nothing was logged there.
    if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound) return 0;
    throw err;
  }
}
