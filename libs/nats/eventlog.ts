/** Appending to and reading from the event log (the MF_EVENTS stream). */
import { ClosedConnectionError, DrainingConnectionError, headers, NoRespondersError, RequestError, TimeoutError } from "@nats-io/transport-node";
import { DeliverPolicy, JetStreamApiError, type ConsumerMessages, type JetStreamClient, type JsMsg, type PubAck } from "@nats-io/jetstream";
import { decodeEvent, encodeEvent } from "../codec/index.ts";
import { isRunEvent, outcomeChunk, type MapflowEvent } from "../events/index.ts";
import { evolve, type EvolveOptions, type RunState } from "../core/index.ts";
import type { Nats } from "./connect.ts";
import type { PublishAckedOptions } from "./publisher.ts";
import { HEADERS, STREAMS, subjects } from "../names/index.ts";
import { CodecError, SchemaTooNewError, UnreachableError } from "../errors.ts";
import type { Logger } from "../log/index.ts";
import { countEvent, eventsAppended } from "../metrics/index.ts";

/** JetStream's error code while a cluster has no leader ("JetStream system temporarily unavailable"). */
const JETSTREAM_UNAVAILABLE = 10008;

/** An error JetStream gives while a server restarts or a cluster elects a leader: worth trying again. */
export function isTransient(err: unknown): boolean {
  return err instanceof TimeoutError || err instanceof NoRespondersError || (err instanceof RequestError && err.isNoResponders())
    || (err instanceof JetStreamApiError && err.code === JETSTREAM_UNAVAILABLE)
    // What a publish reports when no server answers for the stream (the client's class is not exported).
    || (err instanceof Error && err.name === "JetStreamNotEnabled")
    || err instanceof UnreachableError;
}

/**
 * Retries a JetStream request that timed out or found no responder — a
 * server restarting, a cluster electing a new leader — for up to `forMs`,
 * backing off up to `maxDelayMs`; `onRetry` hears of each failed attempt.
 */
export async function whileJetStreamRecovers<T>(
  request: () => Promise<T>,
  forMs = 30_000,
  options: { maxDelayMs?: number; onRetry?: (err: unknown, attempt: number) => void } = {},
): Promise<T> {
  const deadline = Date.now() + forMs;
  for (let attempt = 0; ; attempt++) {
    try {
      return await request();
    } catch (err) {
      if (!isTransient(err) || Date.now() > deadline) throw err;
      options.onRetry?.(err, attempt);
      await new Promise((r) => setTimeout(r, Math.min(options.maxDelayMs ?? 1000, 100 * 2 ** attempt)));
    }
  }
}

/** The subject an event is appended on; who may write it follows from its shape. */
export function subjectOf(event: MapflowEvent): string {
  switch (event.type) {
    case "DagRegistered":
      return subjects.dagRegistered(event.dagId);
    case "DagPaused":
      return subjects.dagPaused(event.dagId);
    case "RunsPurged":
      return subjects.admin;
    case "RunRequested":
    case "ClearRequested":
    case "InstanceMarked":
    case "RunCancelRequested":
      return subjects.requests(event.runId);
    case "InstanceStarted":
    case "InstanceSucceeded":
    case "InstanceFailed":
      return subjects.instanceOutcome(event.runId, event.taskId, event.mapIndex);
    case "InstancesFinished":
      return subjects.chunkOutcomes(event.runId, event.taskId, outcomeChunk(event.outcomes[0]!.mapIndex));
    default:
      return subjects.coordinator(event.runId);
  }
}

/** The message id (deduplication) and the fence (expected last sequence of the event's subject). */
export type AppendOptions = Omit<PublishAckedOptions, "headers">;

export async function appendEvent(nats: Nats, event: MapflowEvent, options: AppendOptions = {}): Promise<PubAck> {
  const encoded = encodeEvent(event);
  const h = headers();
  h.set(HEADERS.eventType, encoded.type);
  h.set(HEADERS.schemaVersion, String(encoded.schemaVersion));
  try {
    const ack = await nats.publisher.publish(subjectOf(event), encoded.data, { headers: h, ...options });
    if (!ack.duplicate) countEvent(eventsAppended, event);
    return ack;
  } catch (err) {
    throw isTransient(err) ? jetStreamUnavailable(err, `the event log did not acknowledge ${event.type}`) : err;
  }
}

/** A transient JetStream failure, said for a person: what did not happen, why it may be, what to do. */
export function jetStreamUnavailable(err: unknown, what: string): UnreachableError {
  return new UnreachableError(
    `${what} (${(err as Error).message}): JetStream is restarting or has lost its quorum ` +
      "(a cluster needs a majority of its nodes up). It may still be recorded when they are back, as a write the servers " +
      "had not acknowledged; check the servers, and once they are back check whether it was (e.g. `mapflow runs list`) before you try again.",
    { cause: err },
  );
}

export type LoggedEvent = { readonly seq: number; readonly subject: string; readonly event: MapflowEvent };

export function decodeLogged(msg: JsMsg): LoggedEvent {
  const version = Number(msg.headers?.get(HEADERS.schemaVersion) ?? NaN);
  const type = msg.headers?.get(HEADERS.eventType) || undefined;
  return { seq: msg.seq, subject: msg.subject, event: decodeEvent(msg.data, type, Number.isFinite(version) ? version : undefined) };
}

/** One message of the log; `event` is null for a message that is not a valid event (see `onBadEvent`). */
export type Delivered = {
  readonly seq: number;
  readonly subject: string;
  readonly event: MapflowEvent | null;
  /** When the server stored it (epoch ms). */
  readonly time: number;
  /** Nothing newer was pending when this message arrived. */
  readonly caughtUp: boolean;
};

/** The usual `onBadEvent`: log the skipped message and go on. */
export function logBadEvent(log: Logger): (seq: number, error: CodecError) => void {
  return (seq, err) => log.error({ seq, err }, "skipping a log message that is not a valid event");
}

export type Follow = {
  /** Yields messages in stream order. */
  [Symbol.asyncIterator](): AsyncIterator<Delivered>;
  stop(): Promise<void>;
};

/** How long a reader tries to open its consumer while a cluster elects leaders (slow on a loaded machine). */
const OPEN_MS = 120_000;
/** A reader waiting this long while the log holds a message for it is stuck: it starts over from there. */
const STALL_MS = 8000;

/** Whether the stream's leader holds a message for `filter` at or after `seq` (the authority, unlike a lagging replica). */
export async function hasMessageFrom(js: JetStreamClient, filter: string | string[], seq: number): Promise<boolean> {
  const jsm = await js.jetstreamManager(false);
  for (const subject of Array.isArray(filter) ? filter : [filter]) {
    // The server's STREAM.MSG.GET takes `next_by_subj` with `seq`; the client's type lists only the other forms.
    const next = await jsm.streams.getMessage(STREAMS.events, { seq, next_by_subj: subject } as unknown as { seq: number });
    if (next) return true;
  }
  return false;
}

/**
 * Follows the log from a sequence through an ordered consumer (ephemeral,
 * never redelivers). The client recreates it after a reconnect or missed
 * heartbeats; and since a consumer left on a replica that lost the stream's
 * leadership can heartbeat on while delivering nothing, a reader that waits
 * too long while the leader holds a message for it starts a new consumer
 * from the next sequence it needs.
 */
export async function followEvents(
  js: JetStreamClient,
  filter: string | string[],
  fromSeq = 1,
  /** A malformed message is passed here and yielded with a null event; without it, it stops the reader. */
  onBadEvent?: (seq: number, error: CodecError) => void,
  /** Start with only the last message of each subject the filter matches (then every new one), instead of `fromSeq`. */
  options: { lastPerSubject?: boolean } = {},
): Promise<Follow> {
  let first = options.lastPerSubject === true;
  const open = (seq: number) => whileJetStreamRecovers(async () => {
    // A reopen (after a stall) goes on from the next sequence it needs, whichever way the reader began.
    const start = first ? { deliver_policy: DeliverPolicy.LastPerSubject } : { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: Math.max(1, seq) };
    const consumer = await js.consumers.get(STREAMS.events, { filter_subjects: filter, ...start });
    first = false;
    // Short pulls: after a server restart the client notices the lost pull by missing heartbeats
    // (half of `expires`), so 5 s here means a reader resumes within seconds, not half a minute.
    return consumer.consume({ max_messages: 2048, expires: 5000 });
  }, OPEN_MS);
  let messages: ConsumerMessages = await open(fromSeq);
  /** A reader already running keeps trying for as long as it is not stopped; null once its connection is closing. */
  const reopen = async (seq: number): Promise<ConsumerMessages | null> => {
    for (;;) {
      try {
        return await open(seq);
      } catch (err) {
        // Its owner closed the connection without stopping it first: there is nothing left to follow.
        if (err instanceof ClosedConnectionError || err instanceof DrainingConnectionError) return null;
        if (stopped || !isTransient(err)) throw err;
      }
    }
  };
  let stopped = false;
  let stalled = false;
  let next = Math.max(1, fromSeq);
  /** Since when the reader has been waiting for the consumer's next message; null while its caller holds one. */
  let waitingSince: number | null = null;
  /** The sequence a check found waiting at the leader; a second check that finds the reader still waiting for it reopens. */
  let suspect: number | null = null;
  let checking = false;
  const watchdog = setInterval(() => {
    if (stopped || stalled || checking || waitingSince === null || Date.now() - waitingSince < STALL_MS) {
      suspect = null;
      return;
    }
    const current = messages;
    const waitingFor = next;
    checking = true;
    void hasMessageFrom(js, filter, waitingFor).then((behind) => {
      if (!behind || stopped || current !== messages || waitingSince === null || next !== waitingFor) {
        suspect = null;
      } else if (suspect !== waitingFor) {
        suspect = waitingFor; // it may be on its way: look again next time
      } else {
        stalled = true;
        void current.close().catch(() => {});
      }
    }, () => {
      // the server is unreachable: the client's own reconnect and reset are under way
    }).finally(() => (checking = false));
  }, STALL_MS / 2);
  return {
    async *[Symbol.asyncIterator]() {
      let iterator: AsyncIterator<JsMsg> | undefined;
      try {
        while (!stopped) {
          iterator = messages[Symbol.asyncIterator]();
          for (;;) {
            waitingSince = Date.now();
            const step = await iterator.next();
            waitingSince = null;
            if (step.done) break;
            const msg = step.value;
            const caughtUp = msg.info.pending === 0;
            next = msg.seq + 1;
            let event: MapflowEvent | null;
            try {
              event = decodeLogged(msg).event;
            } catch (err) {
              // A log from a newer mapflow must not be half-read: only malformed messages are skipped.
              if (!(err instanceof CodecError) || err instanceof SchemaTooNewError || !onBadEvent) throw err;
              onBadEvent(msg.seq, err);
              event = null;
            }
            yield { seq: msg.seq, subject: msg.subject, event, time: Math.floor(msg.info.timestampNanos / 1e6), caughtUp };
          }
          // Ended without being stopped: stalled (the watchdog closed it), or the client ended the
          // consumer on its own (seen in tests where workers die around it). A follower follows until
          // stopped, so either way it starts again from the next sequence it needs.
          if (stopped) break;
          stalled = false;
          const reopened = await reopen(next);
          if (reopened === null) break;
          messages = reopened;
          if (stopped) await messages.close();
        }
      } finally {
        clearInterval(watchdog);
        // The client's close() waits for its iterator to finish: a reader that stops early must end it.
        await iterator?.return?.();
      }
    },
    async stop() {
      stopped = true;
      clearInterval(watchdog);
      await messages.close();
    },
  };
}

/** A run folded from its own subjects: its state, the last sequence on its coordinator subject (the fence), and how many events that took. */
export type FoldedRun = { readonly state: RunState | undefined; readonly coordSeq: number; readonly folded: number };

/** Folds one run's events that precede `beforeSeq`, for a reader that does not hold the run's state. */
export async function foldRun(nats: Nats, runId: string, beforeSeq: number, log: Logger, options?: EvolveOptions): Promise<FoldedRun> {
  const follow = await followEvents(nats.js, subjects.run(runId), 1, logBadEvent(log));
  let state: RunState | undefined;
  let coordSeq = 0;
  let folded = 0;
  try {
    for await (const { seq, subject, event, caughtUp } of follow) {
      if (seq >= beforeSeq) break;
      folded++;
      if (subject === subjects.coordinator(runId)) coordSeq = seq;
      if (event && isRunEvent(event)) state = evolve(state, event, options);
      if (caughtUp) break;
    }
  } finally {
    await follow.stop();
  }
  return { state, coordSeq, folded };
}
