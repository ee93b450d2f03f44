/**
 * Worker heartbeats in the `mf-workers` KV bucket. Each worker writes its
 * key every WORKER_BEAT_MS; the bucket's max age (WORKER_TTL_MS, three
 * beats) drops a dead worker's key on its own, and a worker that stops
 * deletes its key at once. A KV bucket rather than a stream: readers want
 * each worker's latest beat only, and that is what a KV bucket keeps.
 * In memory: beats are worthless after a restart, and workers write them
 * again within one beat.
 */
import { StorageType, JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import { decodeWorkerBeat } from "../codec/index.ts";
import { liveWorkers, type WorkerBeat, type WorkerPresence } from "../core/presence.ts";
import { BUCKETS } from "../names/index.ts";
import { replicasFor, type Nats } from "./connect.ts";

export const WORKER_BEAT_MS = 5000;
export const WORKER_TTL_MS = 3 * WORKER_BEAT_MS;

export function workersBucket(nats: Nats): Promise<KV> {
  return new Kvm(nats.js).create(BUCKETS.workers, {
    history: 1,
    ttl: WORKER_TTL_MS,
    storage: StorageType.Memory,
    replicas: replicasFor(nats.nc),
    description: "worker heartbeats; a key expires three beats after its worker's last",
  });
}

/** The workers whose last beat is younger than the bucket's TTL, by name. */
export async function readWorkers(nats: Nats, now = Date.now): Promise<WorkerPresence[]> {
  let kv: KV;
  try {
    kv = await new Kvm(nats.js).open(BUCKETS.workers);
    await kv.status(); // open() does not check the bucket exists
  } catch (err) {
    // No worker of this version has started yet: none are live.
    if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound) return [];
    throw err;
  }
  const beats: { key: string; beat: WorkerBeat; storedAt: number }[] = [];
  for await (const key of await kv.keys()) {
    const entry = await kv.get(key);
    if (!entry || entry.operation !== "PUT") continue;
    beats.push({ key, beat: decodeWorkerBeat(entry.value), storedAt: entry.created.getTime() });
  }
  return liveWorkers(beats, now(), WORKER_TTL_MS);
}
