/** Publishing work items to the MF_WORK queue stream. */
import { headers } from "@nats-io/transport-node";
import { JetStreamApiError } from "@nats-io/jetstream";
import type { ObjectStore } from "@nats-io/obj";
import { encodeWork } from "../codec/index.ts";
import type { WorkItem } from "../core/work.ts";
import { HEADERS, msgIds, objects, subjects } from "../names/index.ts";
import type { Nats } from "./connect.ts";
import { INLINE_VALUE_BYTES } from "./values.ts";

/** How many publishes wait for their acks at once: bounds memory and keeps the server busy. */
const WINDOW = 512;

/** JetStream's "store failed" code, which a DiscardNew stream at its limits answers with. */
const STREAM_FULL = 10077;

/** A work item too large to send at all, with its size; the caller fails its instance. */
export type Oversized = { readonly item: WorkItem; readonly bytes: number };

export type PublishOptions = {
  /** The hard limit on one work item; larger ones are returned, not sent. */
  readonly maxBytes: number;
  /** The value bucket, opened when the first item too large to travel inline needs it. */
  readonly store: () => Promise<ObjectStore>;
  /** Told when the work stream is full (its limits refuse new work) and publishing waits for workers to drain it. */
  readonly onFull?: () => void;
  /** The publisher is stopping: publishing ends at the next item, and waiting for room ends. */
  readonly stopped?: () => boolean;
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Publishes every item, each with a deterministic message id, so that a
 * coordinator that publishes the same work again (after a restart) queues it
 * once. Items are made as they are sent (a 100,000-instance expansion is not
 * held in memory at once), at most WINDOW unacknowledged. An item over the
 * inline size travels through the object store; one over `maxBytes` is
 * returned. A full work stream makes this wait, not fail.
 */
export async function publishWork(nats: Nats, items: Iterable<WorkItem>, options: PublishOptions): Promise<Oversized[]> {
  const oversized: Oversized[] = [];
  let sends: Promise<unknown>[] = [];
  for (const item of items) {
    if (options.stopped?.()) break; // the rest is sent again by the next coordinator's start
    const data = encodeWork(item);
    if (data.byteLength > options.maxBytes) {
      oversized.push({ item, bytes: data.byteLength });
      continue;
    }
    sends.push(publishOne(nats, item, data, options));
    if (sends.length >= WINDOW) {
      await Promise.all(sends);
      sends = [];
    }
  }
  await Promise.all(sends);
  return oversized;
}

async function publishOne(nats: Nats, item: WorkItem, data: Uint8Array, options: PublishOptions): Promise<void> {
  const msgID = msgIds.work(item.runId, item.taskId, item.mapIndex, item.try);
  const h = headers();
  let body = data;
  if (data.byteLength > INLINE_VALUE_BYTES) {
    const key = objects.work(msgID);
    await (await options.store()).putBlob({ name: key }, data);
    h.set(HEADERS.workObject, key);
    body = new Uint8Array(0);
  }
  for (let attempt = 0; ; attempt++) {
    try {
      await nats.publisher.publish(subjects.work(item.queue, item.runId, item.taskId), body, { msgId: msgID, headers: h });
      return;
    } catch (err) {
      if (!(err instanceof JetStreamApiError && err.code === STREAM_FULL) || options.stopped?.()) throw err;
      options.onFull?.();
      await sleep(Math.min(2000, 50 * 2 ** attempt));
    }
  }
}
