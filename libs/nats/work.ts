/** Publishing work items to the MF_WORK queue stream. */
import type { JetStreamClient } from "@nats-io/jetstream";
import { encodeWork } from "../codec/index.ts";
import type { WorkItem } from "../core/work.ts";
import { msgIds, subjects } from "../names/index.ts";

/** How many publishes wait for their acks at once: bounds memory and keeps the server busy. */
const WINDOW = 512;

/**
 * Publishes every item, each with a deterministic message id, so that a
 * coordinator that publishes the same work again (after a restart) queues it once.
 */
export async function publishWork(js: JetStreamClient, items: readonly WorkItem[]): Promise<void> {
  for (let start = 0; start < items.length; start += WINDOW) {
    const window = items.slice(start, start + WINDOW);
    await Promise.all(
      window.map((item) =>
        js.publish(subjects.work(item.queue, item.runId, item.taskId), encodeWork(item), {
          msgID: msgIds.work(item.runId, item.taskId, item.mapIndex, item.try),
        }),
      ),
    );
  }
}
