/**
 * Leadership through a lease in a JetStream KV bucket. The bucket's TTL is
 * the lease: its holder renews the key with a revision-checked update well
 * inside it; if the holder dies or stalls, the key expires and a standby's
 * create succeeds. A holder that cannot renew in time steps down, and the
 * expected-sequence fence refuses whatever a stale holder still appends.
 */
import { KvWatchInclude, Kvm, type KV } from "@nats-io/kv";
import { StorageType } from "@nats-io/jetstream";
import { BUCKETS, KEYS } from "../../libs/names/index.ts";
import { replicasFor, type Nats } from "../../libs/nats/index.ts";
import type { Logger } from "../../libs/log/index.ts";
import { setCoordinatorLeader } from "../../libs/metrics/index.ts";

export type Service = { stop(): Promise<void> };

/** A standby takes over within about this long after the leader dies. */
export const DEFAULT_LEASE_MS = 5000;
export type Leader = { isLeader(): boolean; stop(): Promise<void> };

/** Waits `ms`, or less once `signal` says stop (or, for a standby, that the lease was released). */
const sleep = (ms: number, signal: { stopped: boolean; released?: boolean }) =>
  new Promise<void>((resolve) => {
    const step = Math.min(ms, 100);
    let left = ms;
    const tick = () => (signal.stopped || signal.released || (left -= step) <= 0 ? resolve() : setTimeout(tick, step));
    setTimeout(tick, step);
  });

export async function leaseBucket(nats: Nats, leaseMs: number): Promise<KV> {
  return new Kvm(nats.js).create(BUCKETS.leases, { ttl: leaseMs, history: 1, storage: StorageType.File, replicas: replicasFor(nats.nc) });
}

/** Runs `start()`'s service only while this process holds the lease; stands by otherwise. */
export async function whileLeader(nats: Nats, log: Logger, holder: string, leaseMs: number, start: () => Promise<Service>): Promise<Leader> {
  const kv = await leaseBucket(nats, leaseMs);
  // The bucket keeps the TTL it was made with: renew by that, whatever this process was given.
  const ttl = (await kv.status()).ttl || leaseMs;
  if (ttl !== leaseMs) log.warn({ leaseMs, bucketTtl: ttl }, "the lease bucket has another TTL; renewing by the bucket's");
  /** `released`: the holder deleted the key (a clean stop), so a standby tries at once instead of at its next poll. */
  const state = { stopped: false, released: false };
  const releases = await watchReleases(kv, log, () => (state.released = true));
  let leading = false;
  /** Revision of our key while we hold it; 0 when we do not (so stop() never deletes another holder's key). */
  let revision = 0;
  let renewed = 0;
  let lost = false;

  // Renews from the moment the key is ours, also while the service is still starting.
  async function renew(): Promise<void> {
    try {
      revision = await kv.update(KEYS.coordinatorLease, holder, revision, Math.max(500, ttl / 3));
      renewed = Date.now();
    } catch (err) {
      // A revision mismatch: someone else holds it. Anything else: keep trying while the lease may still be ours.
      if (Date.now() - renewed > (ttl * 2) / 3 || /wrong last sequence/i.test((err as Error).message)) {
        if (!lost) log.warn({ holder, err }, "lost the coordinator lease; stopping and standing by");
        lost = true;
      }
    }
  }

  const loop = (async () => {
    while (!state.stopped) {
      state.released = false;
      try {
        revision = await kv.create(KEYS.coordinatorLease, holder);
      } catch {
        await sleep(ttl / 3, state); // held by another: try again once it may have expired, or at once when released
        continue;
      }
      renewed = Date.now();
      lost = false;
      leading = true;
      setCoordinatorLeader(true);
      log.info({ holder, leaseMs: ttl }, "took the coordinator lease");
      let renewing = Promise.resolve();
      const timer = setInterval(() => {
        renewing = renewing.then(renew);
      }, ttl / 3);
      let service: Service | null = null;
      try {
        service = await start();
        while (!state.stopped && !lost) await sleep(100, state);
      } catch (err) {
        log.error({ err }, "the coordinator failed to start; giving the lease up and trying again");
      } finally {
        clearInterval(timer);
        await renewing;
        leading = false;
        setCoordinatorLeader(false);
        // Stops deciding first (what it appended stays whole: each decision is one fenced append), then lets go.
        await service?.stop().catch((err) => log.error({ err }, "stopping the coordinator failed"));
        const held = revision;
        revision = 0;
        // Still ours (a stop, or a failed start): hand it over at once instead of letting a standby wait out the TTL.
        if (held && !lost) {
          await kv.delete(KEYS.coordinatorLease, { previousSeq: held }).then(
            () => log.info({ holder }, "released the coordinator lease; a standby takes over now"),
            (err) => log.warn({ err, holder }, "could not release the coordinator lease; a standby takes over once it expires"),
          );
        }
        if (!state.stopped && !lost) await sleep(ttl / 3, state); // a failed start: let a standby try first
      }
    }
  })();

  return {
    isLeader: () => leading,
    async stop() {
      state.stopped = true;
      await loop;
      releases.stop();
    },
  };
}

/**
 * Calls `onRelease` whenever the lease key is deleted or purged (a leader
 * that stopped cleanly); an expired key says nothing, which the standbys'
 * polling covers. Without a watch (it could not be made) they only poll.
 */
async function watchReleases(kv: KV, log: Logger, onRelease: () => void): Promise<{ stop(): void }> {
  try {
    const watch = await kv.watch({ key: KEYS.coordinatorLease, include: KvWatchInclude.UpdatesOnly });
    void (async () => {
      for await (const entry of watch) if (entry.operation !== "PUT") onRelease();
    })().catch(() => {});
    return { stop: () => watch.stop() };
  } catch (err) {
    log.warn({ err }, "cannot watch the coordinator lease; a standby notices a released lease at its next poll instead");
    return { stop: () => {} };
  }
}
