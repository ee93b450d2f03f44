/**
 * A worker's heartbeat in the `mf-workers` KV bucket (see libs/nats/workers.ts):
 * written at start, every WORKER_BEAT_MS after, and deleted on stop, so
 * `mapflow workers` lists the live ones and a dead one drops out when its
 * key's max age passes. A heartbeat that cannot be written is only warned
 * about: it tells people what runs, and must never stop work.
 */
import { hostname } from "node:os";
import { ulid } from "ulid";
import { encodeWorkerBeat } from "../../libs/codec/index.ts";
import type { WorkerBeat } from "../../libs/core/presence.ts";
import type { Logger } from "../../libs/log/index.ts";
import { workerKey } from "../../libs/names/index.ts";
import { lazily, WORKER_BEAT_MS, workersBucket, type Nats } from "../../libs/nats/index.ts";

export type Presence = { readonly key: string; stop(): Promise<void> };

export type PresenceInfo = { name: string; queues: readonly string[]; concurrency: number; running: () => number };

export async function announcePresence(nats: Nats, log: Logger, info: PresenceInfo, everyMs = WORKER_BEAT_MS): Promise<Presence> {
  const key = workerKey(info.name, ulid());
  const bucket = lazily(() => workersBucket(nats));
  const startedAt = Date.now();
  const beat = (): WorkerBeat => ({
    name: info.name, host: hostname(), pid: process.pid, queues: [...info.queues], concurrency: info.concurrency,
    running: info.running(), startedAt, at: Date.now(),
  });
  let failing = false;
  const write = async () => {
    try {
      await (await bucket()).put(key, encodeWorkerBeat(beat()));
      if (failing) log.info({ key }, "heartbeat written again");
      failing = false;
    } catch (err) {
      // Once per outage, not once per beat.
      if (!failing) log.warn({ err, key }, "could not write this worker's heartbeat; 'mapflow workers' may not list it until it can");
      failing = true;
    }
  };
  let writing = write(); // the first beat before the worker says it is ready, so it is listed from then on
  await writing;
  const timer = setInterval(() => {
    writing = writing.then(write);
  }, everyMs);
  timer.unref();
  return {
    key,
    async stop() {
      clearInterval(timer);
      await writing;
      try {
        await (await bucket()).delete(key);
      } catch (err) {
        log.warn({ err, key }, "could not remove this worker's heartbeat; it drops out when it expires");
      }
    },
  };
}
