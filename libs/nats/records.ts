/**
 * The log as records: each message's sequence, subject, server time, type
 * and schema headers and its bytes, undecoded. Audits, replays and archives
 * read these, so an archive holds exactly what the stream held and decodes
 * (with upcasting) the same way later.
 */
import { DeliverPolicy, JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";
import { decodeEvent } from "../codec/index.ts";
import type { MapflowEvent } from "../events/index.ts";
import { HEADERS, STREAMS, subjects } from "../names/index.ts";
import type { Nats } from "./connect.ts";
import { hasMessageFrom } from "./eventlog.ts";

export type LogRecord = {
  readonly seq: number;
  readonly subject: string;
  /** When the server stored it (epoch ms): the log's own clock, in sequence order. */
  readonly time: number;
  readonly type: string | undefined;
  readonly schema: number | undefined;
  readonly data: Uint8Array;
};

export function decodeRecord(record: LogRecord): MapflowEvent {
  return decodeEvent(record.data, record.type, record.schema);
}

export type RecordRange = {
  /** Subject filter (default: every event). */
  filter?: string | string[];
  from?: number;
  /** The last sequence to read (default: the log's last when the read starts). */
  to?: number;
};

/** The log's last sequence now (0 when empty). */
export async function lastLogSeq(nats: Nats): Promise<number> {
  return (await nats.jsm.streams.info(STREAMS.events)).state.last_seq;
}

/**
 * The records of a range, in order, ending at `to` (or the log's end when the
 * read started): a finite read, unlike a follower. Ends early when nothing
 * matching is left.
 */
export async function* readRecords(nats: Nats, range: RecordRange = {}): AsyncGenerator<LogRecord> {
  const to = range.to ?? (await lastLogSeq(nats));
  const from = Math.max(1, range.from ?? 1);
  if (to < from) return;
  const filter = range.filter ?? subjects.allEvents;
  // When nothing matches, a consumer would wait for new messages: ask the stream first.
  try {
    if (!(await hasMessageFrom(nats.js, filter, from))) return;
  } catch (err) {
    if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound) return;
    throw err;
  }
  const consumer = await nats.js.consumers.get(STREAMS.events, { filter_subjects: filter, deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: from });
  const messages = await consumer.consume({ max_messages: 2048, expires: 5000 });
  try {
    for await (const m of messages) {
      if (m.seq > to) break;
      const schema = Number(m.headers?.get(HEADERS.schemaVersion) ?? NaN);
      yield {
        seq: m.seq,
        subject: m.subject,
        time: Math.floor(m.info.timestampNanos / 1e6),
        type: m.headers?.get(HEADERS.eventType) || undefined,
        schema: Number.isFinite(schema) ? schema : undefined,
        data: m.data,
      };
      if (m.seq >= to || m.info.pending === 0) break;
    }
  } finally {
    await messages.close();
  }
}
