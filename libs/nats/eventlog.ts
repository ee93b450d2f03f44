/** Appending to and reading from the event log (the MF_EVENTS stream). */
import { headers } from "@nats-io/transport-node";
import { DeliverPolicy, type JetStreamClient, type JsMsg, type PubAck } from "@nats-io/jetstream";
import { decodeEvent, encodeEvent } from "../codec/index.ts";
import type { MapflowEvent } from "../events/index.ts";
import { HEADERS, STREAMS, subjects } from "../names/index.ts";
import { CodecError } from "../errors.ts";

/** The subject an event is appended on; who may write it follows from its shape. */
export function subjectOf(event: MapflowEvent): string {
  switch (event.type) {
    case "DagRegistered":
      return subjects.dagRegistered(event.dagId);
    case "RunRequested":
      return subjects.runRequested(event.runId);
    case "InstanceSucceeded":
    case "InstanceFailed":
      return subjects.instanceOutcome(event.runId, event.taskId);
    default:
      return subjects.coordinator(event.runId);
  }
}

export type AppendOptions = {
  /** JetStream drops a second message with this id inside the duplicate window. */
  msgId?: string;
  /** The fence: the append fails unless the subject's last sequence is this (0: no message yet). */
  expectLastSubjectSeq?: number;
};

export async function appendEvent(js: JetStreamClient, event: MapflowEvent, options: AppendOptions = {}): Promise<PubAck> {
  const encoded = encodeEvent(event);
  const h = headers();
  h.set(HEADERS.eventType, encoded.type);
  h.set(HEADERS.schemaVersion, String(encoded.schemaVersion));
  return js.publish(subjectOf(event), encoded.data, {
    headers: h,
    ...(options.msgId ? { msgID: options.msgId } : {}),
    ...(options.expectLastSubjectSeq !== undefined ? { expect: { lastSubjectSequence: options.expectLastSubjectSeq } } : {}),
  });
}

export type LoggedEvent = { readonly seq: number; readonly subject: string; readonly event: MapflowEvent };

export function decodeLogged(msg: JsMsg): LoggedEvent {
  const version = Number(msg.headers?.get(HEADERS.schemaVersion) ?? NaN);
  const type = msg.headers?.get(HEADERS.eventType) || undefined;
  return { seq: msg.seq, subject: msg.subject, event: decodeEvent(msg.data, type, Number.isFinite(version) ? version : undefined) };
}

export type Follow = {
  /** Yields events in stream order, each with whether the reader has caught up with the log. */
  [Symbol.asyncIterator](): AsyncIterator<LoggedEvent & { readonly caughtUp: boolean }>;
  stop(): Promise<void>;
};

/**
 * Follows the log from a sequence through an ordered consumer (ephemeral,
 * recreated by the client after a reconnect, never redelivers).
 */
export async function followEvents(
  js: JetStreamClient,
  filter: string | string[],
  fromSeq = 1,
  /** A message that is not a valid event is passed here and skipped; without it, it stops the reader. */
  onBadEvent?: (seq: number, error: CodecError) => void,
): Promise<Follow> {
  const consumer = await js.consumers.get(STREAMS.events, {
    filter_subjects: filter,
    deliver_policy: DeliverPolicy.StartSequence,
    opt_start_seq: Math.max(1, fromSeq),
  });
  const messages = await consumer.consume({ max_messages: 2048 });
  return {
    async *[Symbol.asyncIterator]() {
      for await (const msg of messages) {
        let logged: LoggedEvent;
        try {
          logged = decodeLogged(msg);
        } catch (err) {
          if (!(err instanceof CodecError) || !onBadEvent) throw err;
          onBadEvent(msg.seq, err);
          continue;
        }
        yield { ...logged, caughtUp: msg.info.pending === 0 };
      }
    },
    async stop() {
      await messages.close();
    },
  };
}
