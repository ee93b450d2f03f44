/**
 * The mapflow figures of `make bench`, each on a fresh stack (scripts/bench/stack.ts):
 * fan-out → reduce throughput, the seed DAG's latency, replay speed.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "../../libs/log/index.ts";
import { startProjector } from "../../services/projector/index.ts";
import { replayToFile } from "../../services/audit/replay.ts";
import { readRecords, type LogRecord } from "../../libs/nats/index.ts";
import { ReadQueries } from "../../libs/store/queries.ts";
import { DeliverPolicy } from "@nats-io/jetstream";
import { HEADERS, STREAMS, subjects } from "../../libs/names/index.ts";
import { BENCH_DAGS, EXAMPLE_DAGS, Stack, type CpuSeconds, type PeakRss } from "./stack.ts";
import { median, percentile } from "./stats.ts";

export type FanoutFigure = {
  n: number;
  workers: number;
  ms: number;
  instancesPerSecond: number;
  peakRssMiB: PeakRss;
  /** CPU seconds each process spent on the timed run (the warm-up's taken off). */
  cpuSeconds: CpuSeconds;
};
export type ReplayFigure = {
  /** Events folded, an InstancesFinished counted as the outcomes it holds (as `mapflow replay` counts them). */
  events: number;
  /** The log's messages that hold them. */
  messages: number;
  ms: number;
  eventsPerSecond: number;
  /** The same log read with the same client and nothing done with it: the floor replay stands on. */
  readOnlyPerSecond: number;
  /** The fold and the SQLite writes alone: `mapflow replay`'s, of the same records already read into memory. */
  foldOnlyPerSecond: number;
  /** The web UI's reads of the run's mapped task, on the replayed file (median ms of 5). */
  uiPageMs: UiPageFigure;
};
export type UiPageFigure = { instances: number; firstPage: number; sortedByDuration: number; filteredDeep: number };

/** How long the UI's instance list takes to answer for the widest task of the newest run: its first page, sorted, and deep in a filter. */
function uiPages(dbPath: string): UiPageFigure {
  const queries = new ReadQueries(dbPath);
  try {
    const run = queries.runs({ limit: 1 })[0]!;
    const task = queries.tasks(run.runId).sort((a, b) => (b.mapCount ?? 0) - (a.mapCount ?? 0))[0]!;
    const n = task.mapCount ?? 0;
    const time = (read: () => unknown) => median(Array.from({ length: 5 }, () => {
      const started = performance.now();
      read();
      return performance.now() - started;
    }));
    return {
      instances: n,
      firstPage: time(() => queries.instances(run.runId, task.taskId, { limit: 100 })),
      sortedByDuration: time(() => queries.instances(run.runId, task.taskId, { sort: "duration", desc: true, limit: 100 })),
      filteredDeep: time(() => queries.instances(run.runId, task.taskId, { state: "success", offset: Math.floor(n / 2), limit: 100 })),
    };
  } finally {
    queries.close();
  }
}

/**
 * A run of `instances` first, so the figure is a warm stack's, as a long-running one is: not tsx
 * compiling task code, nor V8 running the hot paths unoptimised with a heap sized for a small run.
 * After a warm-up of 100, N = 1,000 ran at about 1,500 instances/s, after 2,000 at about 2,100; and
 * N = 10,000 ran at 4,200–4,800 after 2,000 (even three runs of it), 5,300–7,600 after 10,000.
 */
async function warm(stack: Stack, instances: number): Promise<void> {
  await stack.run("bench_fanout", { n: instances });
}

/**
 * Trigger → run success of one `bench_fanout` run of `n` instances with `workers` worker processes.
 * With `replay`, also rebuilds SQLite from that stack's log (its events, from the warm-up on).
 */
export async function fanout(n: number, workers: number, options: { warm: number; replay?: boolean; nodeArgs?: readonly string[] }): Promise<{ run: FanoutFigure; replay?: ReplayFigure }> {
  const stack = await Stack.start({ workers, dags: BENCH_DAGS, nodeArgs: options.nodeArgs });
  try {
    await warm(stack, options.warm);
    const before = stack.cpuSeconds();
    const finished = await stack.run("bench_fanout", { n });
    const after = stack.cpuSeconds();
    const cpuSeconds = Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - before[k as keyof CpuSeconds]])) as CpuSeconds;
    const run = { n, workers, ms: finished.ms, instancesPerSecond: n / (finished.ms / 1000), peakRssMiB: stack.peakRss(), cpuSeconds };
    return options.replay ? { run, replay: await replay(stack) } : { run };
  } finally {
    await stack.stop();
  }
}

/**
 * Events per second folding the stack's whole log into a fresh SQLite file, as a new projector does;
 * and, for scale, how fast the same client reads that log while doing nothing with it.
 */
export async function replay(stack: Stack): Promise<ReplayFigure> {
  const dir = mkdtempSync(join(tmpdir(), "mapflow-bench-replay-"));
  const last = await stack.lastSeq();
  const started = performance.now();
  const projector = await startProjector({ nats: stack.nats, log: createLogger("bench", "warn"), dbPath: join(dir, "replay.sqlite") });
  try {
    await projector.waitFor(last);
    const ms = performance.now() - started;
    const foldOnly = await foldOnlyRate(stack, join(dir, "fold-only.sqlite"));
    const events = foldOnly.events;
    return {
      events, messages: last, ms, eventsPerSecond: events / (ms / 1000),
      readOnlyPerSecond: events / ((await readOnlyMs(stack, last)) / 1000), foldOnlyPerSecond: foldOnly.perSecond,
      uiPageMs: uiPages(join(dir, "replay.sqlite")),
    };
  } finally {
    await projector.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Reads the log to `last` with the projector's consumer settings, taking each message's sequence and
 * headers (what any reader of it needs) and decoding nothing.
 */
async function readOnlyMs(stack: Stack, last: number): Promise<number> {
  const started = performance.now();
  const consumer = await stack.nats.js.consumers.get(STREAMS.events, { filter_subjects: subjects.allEvents, deliver_policy: DeliverPolicy.All });
  const messages = await consumer.consume({ max_messages: 2048, expires: 5000 });
  let types = 0;
  for await (const m of messages) {
    if (m.headers?.get(HEADERS.eventType)) types++;
    if (m.seq >= last) break;
  }
  await messages.close();
  if (types === 0) throw new Error("bench: the log read back holds no event headers");
  return performance.now() - started;
}

/** Events folded, and per second, by `mapflow replay`'s fold and writes into `out`, given the log's records already in memory. */
async function foldOnlyRate(stack: Stack, out: string): Promise<{ events: number; perSecond: number }> {
  const records: LogRecord[] = [];
  for await (const record of readRecords(stack.nats)) records.push(record);
  const replayed = await replayToFile((async function* () {
    yield* records;
  })(), out);
  if (replayed.skipped > 0) throw new Error(`bench: replay skipped ${replayed.skipped} malformed events of its own log`);
  return { events: replayed.events, perSecond: replayed.events / (replayed.ms / 1000) };
}

export type LatencyFigure = { runs: number; p50Ms: number; p99Ms: number; maxMs: number; perRun: number[] };

/** The seed DAG (examples/sample_repeated_mapping.ts) triggered `runs` times, one after another, on a warm stack. */
export async function latency(runs: number): Promise<LatencyFigure> {
  const stack = await Stack.start({ workers: 1, dags: EXAMPLE_DAGS });
  try {
    for (let i = 0; i < 5; i++) await stack.run("sample_repeated_mapping", {});
    const perRun: number[] = [];
    for (let i = 0; i < runs; i++) {
      perRun.push((await stack.run("sample_repeated_mapping", {})).ms);
    }
    return { runs, p50Ms: median(perRun), p99Ms: percentile(perRun, 99), maxMs: Math.max(...perRun), perRun };
  } finally {
    await stack.stop();
  }
}
