/**
 * The event log under the two durability modes (README, "Durability
 * modes"): appends per second as the coordinator and workers make them
 * (512 in flight), each into a fresh nats-server and file store.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { appendEvent, configFor, connectNats, ensureStreams, startNatsServer, type Durability, type Nats, type NatsServer } from "../../libs/nats/index.ts";
import type { MapflowEvent } from "../../libs/events/index.ts";

export const APPEND_WINDOW = 512;

/** Runs `measure` against a fresh nats-server in `mode` with its own store, then removes both. */
export async function withServer<T>(mode: Durability, measure: (nats: Nats, server: NatsServer) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), "mapflow-bench-"));
  const server = await startNatsServer({ storeDir: join(dir, "nats"), config: configFor(mode) });
  const nats = await connectNats(server.url, "bench", server.auth("admin"));
  try {
    return await measure(nats, server);
  } finally {
    await nats.nc.close();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Appends `events` instance outcomes to a fresh server in `mode`; returns appends per second. */
export function appendRate(mode: Durability, events: number): Promise<number> {
  return withServer(mode, async (nats) => {
    await ensureStreams(nats);
    const event = (i: number): MapflowEvent => ({
      type: "InstanceSucceeded", runId: "01BENCH", taskId: "each", mapIndex: i, try: 1, result: i * 2, worker: "bench", startedAt: 0, at: 0,
    });
    const started = performance.now();
    for (let start = 0; start < events; start += APPEND_WINDOW) {
      const sends: Promise<unknown>[] = [];
      for (let i = start; i < Math.min(events, start + APPEND_WINDOW); i++) sends.push(appendEvent(nats, event(i)));
      await Promise.all(sends);
    }
    return events / ((performance.now() - started) / 1000);
  });
}
