/**
 * Leadership through a lease in a JetStream KV bucket. The bucket's TTL is
 * the lease: its holder renews the key with a revision-checked update well
 * inside it; if the holder dies or stalls, the key expires and a standby's
 * create succeeds. A holder that cannot renew in time steps down, and the
 * expected-sequence fence refuses whatever a stale holder still appends.
 */
import { Kvm, type KV } from "@nats-io/kv";
import { StorageType } from "@nats-io/jetstream";
import { BUCKETS, KEYS } from "../../libs/names/index.ts";
import { replicasFor, type Nats } from "../../libs/nats/index.ts";
import type { Logger } from "../../libs/log/index.ts";

export type Service = { stop(): Promise<void> };

/** A standby takes over within about this long after the leader dies. */
export const DEFAULT_LEASE_MS = 5000;
export type Leader = { isLeader(): boolean; stop(): Promise<void> };

const sleep = (ms: number, signal: { stopped: boolean }) =>
  new Promise<void>((resolve) => {
    const step = Math.min(ms, 100);
    let left = ms;
    const tick = () => (signal.stopped || (left -= step) <= 0 ? resolve() : setTimeout(tick, step));
    setTimeout(tick, step);
  });

export async function leaseBucket(nats: Nats, leaseMs: number): Promise<KV> {
  return new Kvm(nats.js).create(BUCKETS.leases, { ttl: leaseMs, history: 1, storage: StorageType.File, replicas: replicasFor(nats.nc) });
}

/** Runs `start()`'s service only while this process holds the lease; stands by otherwise. */
export async function whileLeader(nats: Nats, log: Logger, holder: string, leaseMs: number, start: () => Promise<Service>): Promise<Leader> {
  const kv = await leaseBucket(nats, leaseMs);
  const state = { stopped: false };
  let leading = false;
  let revision = 0;

  const loop = (async () => {
    while (!state.stopped) {
      try {
        revision = await kv.create(KEYS.coordinatorLease, holder);
      } catch {
        await sleep(leaseMs / 3, state); // held by another: try again once it may have expired
        continue;
      }
      leading = true;
      log.info({ holder, leaseMs }, "took the coordinator lease");
      const service = await start();
      let renewed = Date.now();
      while (!state.stopped) {
        await sleep(leaseMs / 3, state);
        if (state.stopped) break;
        try {
          revision = await kv.update(KEYS.coordinatorLease, holder, revision);
          renewed = Date.now();
        } catch (err) {
          // A revision mismatch: someone else holds it now. Anything else: keep trying while the lease may still be ours.
          const lost = Date.now() - renewed > (leaseMs * 2) / 3 || /wrong last sequence/i.test((err as Error).message);
          if (lost) {
            log.warn({ holder, err }, "lost the coordinator lease; stopping and standing by");
            break;
          }
        }
      }
      leading = false;
      await service.stop();
    }
  })();

  return {
    isLeader: () => leading,
    async stop() {
      state.stopped = true;
      await loop;
      // Hand over at once instead of letting the standby wait out the TTL.
      await kv.delete(KEYS.coordinatorLease, { previousSeq: revision }).catch(() => {});
    },
  };
}
