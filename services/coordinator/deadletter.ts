/**
 * Work that used up its deliveries without an outcome — every worker that
 * took it died or hung — stays in the work-queue stream forever unless
 * someone acts. JetStream announces it with a MAX_DELIVERIES advisory; this
 * turns that into a failed outcome for the instance (so the run goes on by
 * its retries and trigger rules) and removes the message.
 */
import { decodeWork } from "../../libs/codec/index.ts";
import { msgIds, STREAMS, subjects } from "../../libs/names/index.ts";
import { appendEvent, type Nats } from "../../libs/nats/index.ts";
import type { Logger } from "../../libs/log/index.ts";

type Advisory = { stream?: string; stream_seq?: number; deliveries?: number };

export type DeadLetters = { stop(): void };

export function watchDeadLetters(nats: Nats, log: Logger, isLeader: () => boolean = () => true, now = Date.now): DeadLetters {
  const sub = nats.nc.subscribe(subjects.workMaxDeliveries, {
    callback: (err, msg) => {
      if (err || !isLeader()) return;
      let advisory: Advisory;
      try {
        advisory = msg.json<Advisory>();
      } catch {
        return;
      }
      if (advisory.stream !== STREAMS.work || typeof advisory.stream_seq !== "number") return;
      void persist(advisory.stream_seq, advisory.deliveries ?? 0);
    },
  });

  /**
   * No second advisory comes for the same message, so a failure here (the
   * log electing a leader) is retried for as long as this coordinator leads.
   */
  async function persist(seq: number, deliveries: number): Promise<void> {
    for (let attempt = 0; isLeader(); attempt++) {
      try {
        await deadLetter(seq, deliveries);
        return;
      } catch (err) {
        log.error({ err, seq, attempt }, "could not record dead-lettered work yet; retrying");
        await new Promise((r) => setTimeout(r, Math.min(5000, 200 * 2 ** attempt)));
      }
    }
  }

  async function deadLetter(seq: number, deliveries: number): Promise<void> {
    const stored = await nats.jsm.streams.getMessage(STREAMS.work, { seq });
    if (!stored) return; // acked or removed meanwhile
    const id = stored.header?.get("Nats-Msg-Id") ?? "";
    let instance = msgIds.parseWork(id);
    try {
      const item = decodeWork(stored.data);
      instance = { runId: item.runId, taskId: item.taskId, mapIndex: item.mapIndex, try: item.try };
    } catch {
      // unreadable: the message id still names the instance
    }
    if (instance) {
      const message = `the work for task '${instance.taskId}' map index ${instance.mapIndex} (try ${instance.try}) was delivered ${deliveries} times without an outcome: each worker that took it died or stopped answering (MaxDeliver ${deliveries}). Look for a task that crashes or hangs its worker process.`;
      const at = now();
      await appendEvent(nats.js, {
        type: "InstanceFailed", ...instance, worker: "coordinator", error: { name: "MaxDeliveriesExceeded", message }, startedAt: at, at,
      }, { msgId: msgIds.instance(instance.runId, instance.taskId, instance.mapIndex, instance.try) });
      log.warn({ ...instance, deliveries }, "work used up its deliveries; recorded it as failed");
    }
    await nats.jsm.streams.deleteMessage(STREAMS.work, seq);
  }

  return { stop: () => sub.unsubscribe() };
}
