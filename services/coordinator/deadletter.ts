/**
 * Work that used up its deliveries without an outcome — every worker that
 * took it died or hung — stays in the work-queue stream forever unless
 * someone acts. JetStream announces it with a MAX_DELIVERIES advisory, which
 * the MF_DEAD_LETTERS stream keeps (so one published while no coordinator
 * was up is not lost); the leading coordinator turns each into a failed
 * outcome for the instance (the run goes on by its retries and trigger
 * rules), removes the work message, and only then acks the advisory.
 */
import { AckPolicy, JetStreamApiError, PubHeaders } from "@nats-io/jetstream";
import { nanos } from "@nats-io/transport-node";
import { decodeWork } from "../../libs/codec/index.ts";
import { consumers, msgIds, STREAMS } from "../../libs/names/index.ts";
import { appendEvent, hasOutcome, type Nats } from "../../libs/nats/index.ts";
import type { Logger } from "../../libs/log/index.ts";

type Advisory = { stream?: string; stream_seq?: number; deliveries?: number };

export type DeadLetters = { stop(): Promise<void> };

export async function watchDeadLetters(nats: Nats, log: Logger, isLeader: () => boolean = () => true, now = Date.now): Promise<DeadLetters> {
  try {
    await nats.jsm.consumers.add(STREAMS.deadLetters, { durable_name: consumers.deadLetters, ack_policy: AckPolicy.Explicit, ack_wait: nanos(60_000) });
  } catch (err) {
    // It exists already (an earlier coordinator made it): that one will do; anything else fails here.
    if (!(err instanceof JetStreamApiError)) throw err;
    await nats.jsm.consumers.info(STREAMS.deadLetters, consumers.deadLetters);
  }
  const consumer = await nats.js.consumers.get(STREAMS.deadLetters, consumers.deadLetters);
  const messages = await consumer.consume({ max_messages: 16 });
  const loop = (async () => {
    for await (const msg of messages) {
      let advisory: Advisory;
      try {
        advisory = msg.json<Advisory>();
      } catch {
        msg.term();
        continue;
      }
      if (advisory.stream !== STREAMS.work || typeof advisory.stream_seq !== "number") {
        msg.term();
        continue;
      }
      // Unacked when this coordinator stops leading: the next leader gets it.
      if (await persist(advisory.stream_seq, advisory.deliveries ?? 0)) msg.ack();
    }
  })().catch((err) => log.error({ err }, "stopped reading dead-lettered work; a coordinator restart resumes it (the advisories are kept)"));

  /** Retried for as long as this coordinator leads: a failure here is the log electing a leader. */
  async function persist(seq: number, deliveries: number): Promise<boolean> {
    for (let attempt = 0; isLeader(); attempt++) {
      try {
        await deadLetter(seq, deliveries);
        return true;
      } catch (err) {
        log.error({ err, seq, attempt }, "could not record dead-lettered work yet; retrying");
        await new Promise((r) => setTimeout(r, Math.min(5000, 200 * 2 ** attempt)));
      }
    }
    return false;
  }

  async function deadLetter(seq: number, deliveries: number): Promise<void> {
    const stored = await nats.jsm.streams.getMessage(STREAMS.work, { seq });
    if (!stored) return; // acked or removed meanwhile
    const id = stored.header?.get(PubHeaders.MsgIdHdr) ?? "";
    let instance = msgIds.parseWork(id);
    try {
      const item = decodeWork(stored.data);
      instance = { runId: item.runId, taskId: item.taskId, mapIndex: item.mapIndex, try: item.try };
    } catch {
      // unreadable, or an item kept in the object store: the message id still names the instance
    }
    // The last worker's outcome may be in the log after all (appended, then the worker died before its ack).
    if (instance && !(await hasOutcome(nats, instance.runId, instance.taskId, instance.mapIndex, instance.try))) {
      const message = `the work for task '${instance.taskId}' map index ${instance.mapIndex} (try ${instance.try}) was delivered ${deliveries} times without an outcome: each worker that took it died or stopped answering (MaxDeliver ${deliveries}). Look for a task that crashes or hangs its worker process.`;
      const at = now();
      await appendEvent(nats, {
        type: "InstanceFailed", ...instance, worker: "coordinator", error: { name: "MaxDeliveriesExceeded", message }, startedAt: at, at,
      }, { msgId: msgIds.instance(instance.runId, instance.taskId, instance.mapIndex, instance.try) });
      log.warn({ ...instance, deliveries }, "work used up its deliveries; recorded it as failed");
    }
    await nats.jsm.streams.deleteMessage(STREAMS.work, seq);
  }

  return {
    async stop() {
      await messages.close();
      await loop;
    },
  };
}
