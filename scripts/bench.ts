/**
 * `make bench`: figures measured in one run on this machine, printed as a
 * table and written to bench/results.json with the machine's CPU count and
 * the Node and nats-server versions. Not a test: nothing here fails on a
 * slow machine. Each figure is the median of several rounds.
 *
 * So far it measures:
 * - the floor (scripts/bench/floor.ts): the raw JetStream pipeline, work →
 *   result → read, in loops per second; the limit of mapflow's design;
 * - the event log under the two durability modes (README, "Durability
 *   modes"): appends per second as the coordinator and workers make them
 *   (512 in flight), into a fresh file store.
 *
 *   node --import tsx scripts/bench.ts [--rounds 3] [--events 20000]
 */
import { execFileSync } from "node:child_process";
import { cpus, tmpdir } from "node:os";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { appendEvent, configFor, connectNats, DURABILITY_MODES, ensureStreams, natsServerBinary, startNatsServer, type Durability, type Nats } from "../libs/nats/index.ts";
import { floorRate } from "./bench/floor.ts";
import type { MapflowEvent } from "../libs/events/index.ts";

const WINDOW = 512;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Runs `measure` against a fresh nats-server in `mode` with its own store, then removes both. */
async function withServer<T>(mode: Durability, measure: (nats: Nats, url: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), "mapflow-bench-"));
  const server = await startNatsServer({ storeDir: join(dir, "nats"), config: configFor(mode) });
  const nats = await connectNats(server.url, "bench");
  try {
    return await measure(nats, server.url);
  } finally {
    await nats.nc.close();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Appends `events` instance outcomes to a fresh server in `mode`; returns appends per second. */
function appendRate(mode: Durability, events: number): Promise<number> {
  return withServer(mode, async (nats) => {
    await ensureStreams(nats);
    const event = (i: number): MapflowEvent => ({
      type: "InstanceSucceeded", runId: "01BENCH", taskId: "each", mapIndex: i, try: 1, result: i * 2, worker: "bench", startedAt: 0, at: 0,
    });
    const started = performance.now();
    for (let start = 0; start < events; start += WINDOW) {
      const sends: Promise<unknown>[] = [];
      for (let i = start; i < Math.min(events, start + WINDOW); i++) sends.push(appendEvent(nats.js, event(i)));
      await Promise.all(sends);
    }
    return events / ((performance.now() - started) / 1000);
  });
}

const { values } = parseArgs({ options: { rounds: { type: "string", default: "3" }, events: { type: "string", default: "20000" } } });
const rounds = Number(values.rounds);
const events = Number(values.events);
const perMode: Record<string, number[]> = {};
const floorRounds: number[] = [];
for (let round = 0; round < rounds; round++) {
  // Sections alternate within a round, so a noisy moment falls on all of them.
  floorRounds.push(await withServer("replicated", (nats, url) => floorRate(nats, url, events)));
  for (const mode of DURABILITY_MODES) (perMode[mode] ??= []).push(await appendRate(mode, events));
}
const floor = median(floorRounds);
const rate = Object.fromEntries(DURABILITY_MODES.map((mode) => [mode, median(perMode[mode]!)]));
const machine = {
  cpus: cpus().length,
  node: process.version,
  natsServer: execFileSync(natsServerBinary(), ["--version"], { encoding: "utf8" }).trim(),
};
const results = {
  machine,
  floor: { loops: events, rounds, loopsPerSecond: floor, perRound: floorRounds },
  durability: {
    events, rounds, window: WINDOW,
    appendsPerSecond: rate,
    perRound: perMode,
    replicatedOverDurable: rate["replicated"]! / rate["durable"]!,
  },
};
process.stdout.write(`mapflow bench — ${machine.cpus} CPUs, Node ${machine.node}, ${machine.natsServer}\n\n`);
process.stdout.write("floor: raw JetStream loops/s (work -> one result -> read; three processes)\n");
process.stdout.write(`  ${"".padEnd(11)} ${Math.round(floor).toString().padStart(8)}   rounds: ${floorRounds.map((r) => Math.round(r)).join(", ")}\n\n`);
process.stdout.write("event log appends/s (median of rounds, 512 in flight)\n");
for (const mode of DURABILITY_MODES) {
  process.stdout.write(`  ${mode.padEnd(11)} ${Math.round(rate[mode]!).toString().padStart(8)}   rounds: ${perMode[mode]!.map((r) => Math.round(r)).join(", ")}\n`);
}
process.stdout.write(`  replicated / durable: ${results.durability.replicatedOverDurable.toFixed(1)}x\n`);
mkdirSync("bench", { recursive: true });
writeFileSync(join("bench", "results.json"), `${JSON.stringify(results, null, 2)}\n`);
process.stdout.write("\nwritten to bench/results.json\n");
