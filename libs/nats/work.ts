/** Publishing work items to the MF_WORK queue stream. */
import type { JetStreamClient } from "@nats-io/jetstream";
import { encodeWork } from "../codec/index.ts";
import type { WorkItem } from "../core/work.ts";
import { msgIds, subjects } from "../names/index.ts";

/** How many publishes wait for their acks at once: bounds memory and keeps the server busy. */
const WINDOW = 512;

/** Under nats.conf's max_payload (8 MB), leaving room for headers. */
export const MAX_WORK_BYTES = 7 * 1024 * 1024;

/** A work item too large for one message, with its size; the caller fails its instance. */
export type Oversized = { readonly item: WorkItem; readonly bytes: number };

/**
 * Publishes every item, each with a deterministic message id, so that a
 * coordinator that publishes the same work again (after a restart) queues it
 * once. Items over `maxBytes` are not published but returned.
 */
export async function publishWork(js: JetStreamClient, items: readonly WorkItem[], maxBytes = MAX_WORK_BYTES): Promise<Oversized[]> {
  const oversized: Oversized[] = [];
  for (let start = 0; start < items.length; start += WINDOW) {
    const sends: Promise<unknown>[] = [];
    for (const item of items.slice(start, start + WINDOW)) {
      const data = encodeWork(item);
      if (data.byteLength > maxBytes) {
        oversized.push({ item, bytes: data.byteLength });
        continue;
      }
      sends.push(js.publish(subjects.work(item.queue, item.runId, item.taskId), data, {
        msgID: msgIds.work(item.runId, item.taskId, item.mapIndex, item.try),
      }));
    }
    await Promise.all(sends);
  }
  return oversized;
}
