/**
 * JetStream stops delivering a consumer's messages, silently, once
 * MaxAckPending of them are out unacknowledged. Say so in the log before
 * that point, with what to do about it.
 */
import { consumers, STREAMS } from "../../libs/names/index.ts";
import type { Nats } from "../../libs/nats/index.ts";
import type { Logger } from "../../libs/log/index.ts";
import { queueDepths, type QueueDepth } from "../../libs/metrics/index.ts";

/** The share of MaxAckPending at which the coordinator warns. */
export const ACK_PENDING_ALERT = 0.9;

export type QueueWatch = { stop(): void };

export function watchWorkQueues(nats: Nats, log: Logger, everyMs = 5000): QueueWatch {
  const warned = new Set<string>();
  const check = async () => {
    for await (const info of nats.jsm.consumers.list(STREAMS.work)) {
      const limit = info.config.max_ack_pending ?? 0;
      const near = limit > 0 && info.num_ack_pending >= ACK_PENDING_ALERT * limit;
      if (near && !warned.has(info.name)) {
        log.warn({ consumer: info.name, ackPending: info.num_ack_pending, maxAckPending: limit, waiting: info.num_pending },
          "workers hold nearly MaxAckPending work messages unacknowledged; JetStream hands out no more until some finish: add workers or raise --max-ack-pending");
        warned.add(info.name);
      } else if (!near) {
        warned.delete(info.name);
      }
    }
  };
  const timer = setInterval(() => void check().catch(() => {}), everyMs);
  // Every queue's depth for the metrics, read when scraped.
  const unwatch = queueDepths.watch(() => allQueueDepths(nats));
  return {
    stop: () => {
      clearInterval(timer);
      unwatch();
    },
  };
}

const WORKERS_PREFIX = consumers.workers("");

/** The depth of every queue that has workers' consumer, from JetStream. */
export async function allQueueDepths(nats: Nats): Promise<QueueDepth[]> {
  const depths: QueueDepth[] = [];
  for await (const info of nats.jsm.consumers.list(STREAMS.work)) {
    if (!info.name.startsWith(WORKERS_PREFIX)) continue;
    depths.push({ queue: info.name.slice(WORKERS_PREFIX.length), pending: info.num_pending, ackPending: info.num_ack_pending });
  }
  return depths;
}
