/**
 * Pulling work from a queue's durable consumer, never more than there are
 * free slots: a message waiting in a client buffer gets no heartbeat and
 * would be redelivered to another worker while it waits. A consumer deleted
 * under us, or a server that went away, is recreated or waited out.
 */
import { AckPolicy, JetStreamApiError, type Consumer, type ConsumerMessages, type JsMsg } from "@nats-io/jetstream";
import { nanos } from "@nats-io/transport-node";
import { consumers, STREAMS, subjects } from "../../libs/names/index.ts";
import type { Nats } from "../../libs/nats/index.ts";
import type { Logger } from "../../libs/log/index.ts";

export type PullSettings = {
  readonly queue: string;
  readonly concurrency: number;
  /** Redelivery deadline of a message whose worker went silent. */
  readonly ackWaitMs: number;
  /** Deliveries of one message before JetStream gives up on it (the coordinator then records a failure). */
  readonly maxDeliver: number;
  /** Unacknowledged messages the queue hands out at once, across its workers. */
  readonly maxAckPending: number;
};

/** Creates the queue's durable consumer, or brings an existing one to these settings. */
export async function ensureWorkConsumer(nats: Nats, settings: PullSettings): Promise<void> {
  const durable = consumers.workers(settings.queue);
  const config = {
    durable_name: durable,
    ack_policy: AckPolicy.Explicit,
    filter_subject: subjects.queueWork(settings.queue),
    ack_wait: nanos(settings.ackWaitMs),
    max_deliver: settings.maxDeliver,
    max_ack_pending: settings.maxAckPending,
  };
  try {
    await nats.jsm.consumers.add(STREAMS.work, config);
  } catch (err) {
    if (!(err instanceof JetStreamApiError)) throw err;
    // It exists (another worker made it, or an older config): the newest settings win.
    const { durable_name: _, ...update } = config;
    await nats.jsm.consumers.update(STREAMS.work, durable, update);
  }
}

export type Puller = {
  /** Stops taking work: no more pulls; a message that still arrives is handed straight back. Running items go on. */
  stop(): Promise<void>;
  /** Settles once every item handed to `handle` has been handled. */
  settled(): Promise<void>;
};

/**
 * How long a handed-back message waits before JetStream delivers it again:
 * long enough that it does not bounce between workers that are all stopping
 * (a fleet restarted at once), short enough that the next worker starts it
 * at once for any practical purpose.
 */
export const HAND_BACK_DELAY_MS = 1000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Hands each message to `handle`, at most `concurrency` at once. */
export function pullWork(nats: Nats, log: Logger, settings: PullSettings, handle: (msg: JsMsg) => Promise<void>): Puller {
  const running = new Set<Promise<void>>();
  let stopping = false;
  let batch: ConsumerMessages | null = null;
  let consumer: Consumer | null = null;
  /** Ends the loop's wait for a free slot, so a stop does not wait for a running item. */
  let wake: (() => void) | null = null;

  // Pull again once half the slots are free, not at each one: a pull request per finished item costs
  // more than the item when tasks are short.
  const pullAt = Math.ceil(settings.concurrency / 2);
  const loop = (async () => {
    for (let failures = 0; !stopping; ) {
      const free = settings.concurrency - running.size;
      if (free < pullAt) {
        await new Promise<void>((resolve) => {
          wake = resolve;
          void Promise.race(running).then(resolve);
        });
        wake = null;
        continue;
      }
      try {
        consumer ??= await nats.js.consumers.get(STREAMS.work, consumers.workers(settings.queue));
        batch = await consumer.fetch({ max_messages: free, expires: 1000 });
        for await (const msg of batch) {
          if (stopping) {
            msg.nak(HAND_BACK_DELAY_MS); // pulled as the worker began to stop: another worker takes it
            continue;
          }
          const job = handle(msg)
            .catch((err) => log.error({ err, subject: msg.subject }, "work item could not be handled; it will be redelivered"))
            .finally(() => running.delete(job));
          running.add(job);
        }
        failures = 0;
      } catch (err) {
        if (stopping) break;
        failures++;
        log.warn({ err, failures }, "pulling work failed; recreating the consumer and trying again");
        consumer = null;
        await ensureWorkConsumer(nats, settings).catch((e) => log.warn({ err: e }, "could not recreate the work consumer yet"));
        await sleep(Math.min(5000, 100 * 2 ** failures));
      } finally {
        batch = null;
      }
    }
  })();

  return {
    async stop() {
      stopping = true;
      wake?.();
      batch?.stop();
      await loop;
    },
    async settled() {
      await Promise.allSettled(running);
    },
  };
}
