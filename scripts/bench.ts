/**
 * `make bench`: mapflow's figures measured in one run on this machine,
 * printed as a table and written to bench/results.json with the machine's
 * CPU count and the Node and nats-server versions. Not a test: nothing here
 * fails on a slow machine. Each figure is the median of several rounds, and
 * the sections alternate within a round so a noisy moment falls on all.
 *
 * - floor: the raw JetStream pipeline, work → result → read (scripts/bench/floor.ts);
 * - fan-out → reduce: one mapped task of N trivial instances, trigger to success,
 *   with 1 and 2 worker processes, as a share of the floor;
 * - latency: the seed DAG triggered one run after another on a warm stack;
 * - memory: peak RSS of each service during the largest run (and `--huge`: 1,000,000 instances);
 * - replay: events per second folding the log into a fresh SQLite file;
 * - scaling: instances per second with 1, 2 and 4 worker processes;
 * - the event log's append rate under both durability modes.
 *
 *   node --import tsx scripts/bench.ts [--rounds 3] [--quick] [--huge] [--warm 10000] [--profile <dir>]
 */
import { execFileSync } from "node:child_process";
import { cpus } from "node:os";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { parseArgs } from "node:util";
import { DURABILITY_MODES, natsServerBinary } from "../libs/nats/index.ts";
import { APPEND_WINDOW, appendRate, withServer } from "./bench/appends.ts";
import { floorRate } from "./bench/floor.ts";
import { fanout, latency, type FanoutFigure, type ReplayFigure } from "./bench/runs.ts";
import type { CpuSeconds } from "./bench/stack.ts";
import { median } from "./bench/stats.ts";

const { values: args } = parseArgs({
  options: {
    rounds: { type: "string" },
    sizes: { type: "string" },
    workers: { type: "string" },
    scaling: { type: "string" },
    "scaling-n": { type: "string" },
    "latency-runs": { type: "string" },
    warm: { type: "string" },
    "floor-loops": { type: "string" },
    events: { type: "string" },
    huge: { type: "boolean", default: false },
    quick: { type: "boolean", default: false },
    profile: { type: "string" },
    out: { type: "string", default: "bench/results.json" },
  },
});

// --quick is the short form CI runs (N = 1,000): every section, small and once.
const defaults = args.quick
  ? { rounds: "1", sizes: "1000", workers: "1,2", scaling: "1,2", scalingN: "1000", latencyRuns: "5", floorLoops: "2000", events: "2000", warm: "2000" }
  : { rounds: "3", sizes: "1000,10000,100000", workers: "1,2", scaling: "1,2,4", scalingN: "10000", latencyRuns: "50", floorLoops: "50000", events: "20000", warm: "10000" };
const numbers = (text: string) => text.split(",").map((v) => Number(v.trim()));
const settings = {
  rounds: Number(args.rounds ?? defaults.rounds),
  sizes: numbers(args.sizes ?? defaults.sizes),
  workers: numbers(args.workers ?? defaults.workers),
  scaling: numbers(args.scaling ?? defaults.scaling),
  scalingN: Number(args["scaling-n"] ?? defaults.scalingN),
  latencyRuns: Number(args["latency-runs"] ?? defaults.latencyRuns),
  /** Instances of the run that warms each fan-out stack before the timed one (see runs.ts). */
  warm: Number(args.warm ?? defaults.warm),
  floorLoops: Number(args["floor-loops"] ?? defaults.floorLoops),
  events: Number(args.events ?? defaults.events),
};
for (const [name, value] of Object.entries(settings)) {
  const list = Array.isArray(value) ? value : [value];
  if (list.some((v) => !Number.isInteger(v) || v < 1)) throw new Error(`bench: --${name} must be whole numbers of 1 or more, got ${list.join(",")}`);
}
const nodeArgs = args.profile ? ["--cpu-prof", `--cpu-prof-dir=${args.profile}`] : undefined;
const say = (line: string) => process.stderr.write(`${line}\n`);

const largest = Math.max(...settings.sizes);
const key = (n: number, workers: number) => `${n}/${workers}`;
const floorRounds: number[] = [];
const fanoutRounds = new Map<string, FanoutFigure[]>();
const replayRounds: ReplayFigure[] = [];
const appendRounds: Record<string, number[]> = {};
const configs = [
  ...settings.sizes.flatMap((n) => settings.workers.map((w) => [n, w] as const)),
  ...settings.scaling.filter((w) => !(settings.sizes.includes(settings.scalingN) && settings.workers.includes(w))).map((w) => [settings.scalingN, w] as const),
];

for (let round = 1; round <= settings.rounds; round++) {
  say(`round ${round}/${settings.rounds}: floor`);
  floorRounds.push(await withServer("replicated", (nats, server) => floorRate(nats, server, settings.floorLoops)));
  for (const [n, workers] of configs) {
    say(`round ${round}/${settings.rounds}: fan-out of ${n} with ${workers} worker${workers > 1 ? "s" : ""}`);
    const measured = await fanout(n, workers, { warm: settings.warm, replay: n === largest && workers === 1, nodeArgs });
    fanoutRounds.set(key(n, workers), [...(fanoutRounds.get(key(n, workers)) ?? []), measured.run]);
    if (measured.replay) replayRounds.push(measured.replay);
  }
  say(`round ${round}/${settings.rounds}: event log appends`);
  for (const mode of DURABILITY_MODES) (appendRounds[mode] ??= []).push(await appendRate(mode, settings.events));
}
say(`latency: the seed DAG ${settings.latencyRuns} times`);
const seed = await latency(settings.latencyRuns);
let huge: FanoutFigure | undefined;
if (args.huge) {
  say("huge: one run of 1,000,000 instances");
  huge = (await fanout(1_000_000, 1, { warm: settings.warm, nodeArgs })).run;
}

const floor = median(floorRounds);
/** The median round of a configuration (by rate), and the rates of all its rounds. */
function summary(n: number, workers: number) {
  const rounds = fanoutRounds.get(key(n, workers))!;
  const instancesPerSecond = median(rounds.map((r) => r.instancesPerSecond));
  return {
    n, workers,
    wallMs: median(rounds.map((r) => r.ms)),
    instancesPerSecond,
    ofFloor: instancesPerSecond / floor,
    perRound: rounds.map((r) => Math.round(r.instancesPerSecond)),
    /** CPU milliseconds per instance, by process (median of rounds): where the time goes. */
    cpuMsPerInstance: Object.fromEntries(Object.keys(rounds[0]!.cpuSeconds).map((k) => [k, median(rounds.map((r) => (r.cpuSeconds[k as keyof CpuSeconds] * 1000) / n))])),
  };
}
const fanoutTable = settings.sizes.flatMap((n) => settings.workers.map((w) => summary(n, w)));
const scalingTable = settings.scaling.map((w) => summary(settings.scalingN, w));
// Peak RSS is a high-water mark: the largest of the rounds, not the median.
const peak = (n: number) => {
  const rounds = fanoutRounds.get(key(n, 1)) ?? [];
  const of = (service: keyof FanoutFigure["peakRssMiB"]) => Math.max(...rounds.map((r) => r.peakRssMiB[service]));
  return rounds.length ? { coordinator: of("coordinator"), worker: of("worker"), projector: of("projector") } : undefined;
};
const memory = { n: largest, workers: 1, peakRssMiB: peak(largest), smallest: settings.sizes.length > 1 ? { n: Math.min(...settings.sizes), peakRssMiB: peak(Math.min(...settings.sizes)) } : undefined };
const replay = {
  rounds: replayRounds,
  eventsPerSecond: median(replayRounds.map((r) => r.eventsPerSecond)),
  events: median(replayRounds.map((r) => r.events)),
  messages: median(replayRounds.map((r) => r.messages)),
  readOnlyPerSecond: median(replayRounds.map((r) => r.readOnlyPerSecond)),
  foldOnlyPerSecond: median(replayRounds.map((r) => r.foldOnlyPerSecond)),
  uiPageMs: Object.fromEntries((["instances", "firstPage", "sortedByDuration", "filteredDeep"] as const).map((k) => [k, median(replayRounds.map((r) => r.uiPageMs[k]))])),
};
const appendsPerSecond = Object.fromEntries(DURABILITY_MODES.map((mode) => [mode, median(appendRounds[mode]!)]));

const machine = {
  cpus: cpus().length,
  cpuModel: cpus()[0]?.model ?? "unknown",
  node: process.version,
  natsServer: execFileSync(natsServerBinary(), ["--version"], { encoding: "utf8" }).trim(),
};
const targets = {
  fanoutAtLeast40PercentOfFloor: fanoutTable.filter((r) => r.n >= 10_000).every((r) => r.ofFloor >= 0.4) && fanoutTable.some((r) => r.n >= 10_000),
  seedP50Under50ms: seed.p50Ms < 50,
  seedP99Under200ms: seed.p99Ms < 200,
  millionWithinMemory: huge ? huge.peakRssMiB.coordinator < 500 && huge.peakRssMiB.worker < 200 : null,
  replayAtLeast100kPerSecond: replay.eventsPerSecond >= 100_000,
  uiInstancePageUnder1s: Math.max(replay.uiPageMs["firstPage"]!, replay.uiPageMs["sortedByDuration"]!, replay.uiPageMs["filteredDeep"]!) < 1000,
};
const results = {
  at: new Date().toISOString(),
  machine,
  settings: { ...settings, huge: args.huge },
  floor: { loops: settings.floorLoops, loopsPerSecond: floor, perRound: floorRounds.map(Math.round) },
  fanout: fanoutTable,
  latency: seed,
  memory,
  huge: huge ?? null,
  replay,
  scaling: { n: settings.scalingN, cpus: machine.cpus, table: scalingTable },
  durability: { events: settings.events, window: APPEND_WINDOW, appendsPerSecond, perRound: appendRounds, replicatedOverDurable: appendsPerSecond["replicated"]! / appendsPerSecond["durable"]! },
  targets,
};

const int = (v: number) => Math.round(v).toLocaleString("en-US");
const pct = (v: number) => `${Math.round(v * 100)}%`;
const met = (ok: boolean | null) => (ok === null ? "not measured (--huge)" : ok ? "met" : "NOT met");
const out: string[] = [];
out.push(`mapflow bench — ${machine.cpus} CPUs (${machine.cpuModel}), Node ${machine.node}, ${machine.natsServer}; medians of ${settings.rounds} round(s); each fan-out stack warmed with ${int(settings.warm)} instances`, "");
out.push(`floor: raw JetStream work -> result -> read, three processes   ${int(floor)} loops/s   rounds: ${floorRounds.map(int).join(", ")}`, "");
const cpu = (r: (typeof fanoutTable)[number]) => Object.values(r.cpuMsPerInstance).map((ms) => ms.toFixed(2).padStart(5)).join(" ");
out.push(
  "fan-out -> reduce (trigger to success)                                 CPU ms per instance",
  `  ${"N".padStart(9)}  workers  ${"wall".padStart(8)}  ${"inst/s".padStart(7)}  of floor   ${"rounds (inst/s)".padEnd(24)}  nats coord  proj worker`,
);
for (const r of fanoutTable) {
  out.push(`  ${int(r.n).padStart(9)}  ${String(r.workers).padStart(7)}  ${`${(r.wallMs / 1000).toFixed(2)} s`.padStart(8)}  ${int(r.instancesPerSecond).padStart(7)}  ${pct(r.ofFloor).padStart(8)}   ${r.perRound.map(int).join(", ").padEnd(24)}  ${cpu(r)}`);
}
out.push("", `latency: the seed DAG, ${seed.runs} runs on a warm stack   p50 ${seed.p50Ms} ms   p99 ${seed.p99Ms} ms   max ${seed.maxMs} ms`);
if (memory.peakRssMiB) {
  const m = memory.peakRssMiB;
  out.push("", `memory: peak RSS during N = ${int(largest)} (1 worker)   coordinator ${int(m.coordinator)} MiB   worker ${int(m.worker)} MiB   projector ${int(m.projector)} MiB`);
  if (memory.smallest?.peakRssMiB) {
    const s = memory.smallest.peakRssMiB;
    out.push(`        and during N = ${int(memory.smallest.n)}              coordinator ${int(s.coordinator)} MiB   worker ${int(s.worker)} MiB   projector ${int(s.projector)} MiB`);
  }
}
if (huge) {
  const m = huge.peakRssMiB;
  out.push(`huge: N = 1,000,000 (1 worker)   ${(huge.ms / 1000).toFixed(1)} s   ${int(huge.instancesPerSecond)} inst/s   coordinator ${int(m.coordinator)} MiB   worker ${int(m.worker)} MiB   projector ${int(m.projector)} MiB`);
}
out.push("", `replay: ${int(replay.events)} events (${int(replay.messages)} messages: outcomes finished together are one) into a fresh SQLite file   ${int(replay.eventsPerSecond)} events/s   rounds: ${replayRounds.map((r) => int(r.eventsPerSecond)).join(", ")}`);
out.push(`        the same log only read (sequence and headers, no decoding)   ${int(replay.readOnlyPerSecond)} events/s   replay is ${pct(replay.eventsPerSecond / replay.readOnlyPerSecond)} of that`);
out.push(`        its fold and SQLite writes alone (records already in memory)   ${int(replay.foldOnlyPerSecond)} events/s`);
const ui = replay.uiPageMs;
out.push(`ui: a page of 100 of ${int(ui["instances"]!)} instances   first ${ui["firstPage"]!.toFixed(1)} ms   sorted by duration ${ui["sortedByDuration"]!.toFixed(1)} ms   filtered, at half way ${ui["filteredDeep"]!.toFixed(1)} ms`);
out.push("", `scaling at N = ${int(settings.scalingN)} on ${machine.cpus} CPUs: ${scalingTable.map((r) => `${r.workers} worker${r.workers > 1 ? "s" : ""} ${int(r.instancesPerSecond)} inst/s`).join("   ")}`);
out.push("", `event log appends/s (${APPEND_WINDOW} in flight): ${DURABILITY_MODES.map((mode) => `${mode} ${int(appendsPerSecond[mode]!)}`).join("   ")}   replicated / durable ${results.durability.replicatedOverDurable.toFixed(1)}x`);
out.push("", "targets (issue 5):");
out.push(`  fan-out of 10,000 and 100,000 at >= 40% of the floor   ${met(targets.fanoutAtLeast40PercentOfFloor)}`);
out.push(`  seed DAG p50 < 50 ms                                  ${met(targets.seedP50Under50ms)}`);
out.push(`  seed DAG p99 < 200 ms                                 ${met(targets.seedP99Under200ms)}`);
out.push(`  1,000,000 instances: coordinator < 500 MiB, worker < 200 MiB   ${met(targets.millionWithinMemory)}`);
out.push(`  replay >= 100,000 events/s                            ${met(targets.replayAtLeast100kPerSecond)}`);
out.push(`  UI (issue 6): a page of a mapped task's instances < 1 s   ${met(targets.uiInstancePageUnder1s)}`);
mkdirSync(dirname(args.out), { recursive: true });
writeFileSync(args.out, `${JSON.stringify(results, null, 2)}\n`);
out.push("", `written to ${args.out}`);
process.stdout.write(`${out.join("\n")}\n`);
// Connections and timers of the stacks may linger; the figures are out.
process.exit(0);
