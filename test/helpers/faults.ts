/**
 * Helpers for fault tests: a real nats-server and mapflow services as real
 * processes that the tests kill, pause and restart.
 */
import { join } from "node:path";
import { existsSync, readFileSync } from "node:fs";
import Database from "better-sqlite3";
import type { ChildProcess } from "node:child_process";
import { startCluster, startNatsServer, connectNats, ensureStreams, followEvents, type Cluster, type Nats, type NatsServer } from "../../libs/nats/index.ts";
import assert from "node:assert/strict";
import { STREAMS, subjects } from "../../libs/names/index.ts";
import type { RunState } from "../../libs/core/index.ts";
import { outcomesOf, type RunEvent } from "../../libs/events/index.ts";
import { dumpTables, replayed } from "./replay.ts";
import { registeredDag, requestRun, waitForRun } from "../../services/cli/runs.ts";
import { FIXTURES, startCli, stopProcess, tempDir } from "./index.ts";

export const FAULT_DAGS = join(FIXTURES, "faults");

export type Proc = ChildProcess & { output: () => string };

export type Rig = {
  readonly server: NatsServer;
  /** The three nodes, when the rig is a cluster. */
  readonly cluster: Cluster | null;
  /** What services get as --nats. */
  readonly urls: string;
  readonly nats: Nats;
  readonly dir: string;
  readonly db: string;
  readonly execLog: string;
  /** Starts a service process; `extra` are more CLI flags, `env` more environment. */
  start(kind: "coordinator" | "projector" | "worker", extra?: string[], env?: NodeJS.ProcessEnv): Promise<Proc>;
  /** Stops the server and starts it again on the same port and store, after `downMs`. */
  restartServer(signal?: NodeJS.Signals, downMs?: number): Promise<void>;
  close(): Promise<void>;
};

const READY = { coordinator: /coordinator ready/, projector: /projector ready/, worker: /worker \S+ ready/ };

export async function rig(options: { cluster?: boolean } = {}): Promise<Rig> {
  const dir = tempDir("mapflow-faults-");
  const cluster = options.cluster ? await startCluster(join(dir.path, "cluster")) : null;
  let server = cluster ? (null as unknown as NatsServer) : await startNatsServer({ storeDir: join(dir.path, "nats") });
  const urls = cluster ? cluster.urls.join(",") : server.url;
  const nats = await connectNats(urls, "fault-test", (cluster ?? server).auth("admin"));
  try {
    // A new cluster on a loaded machine can take a while to see all three peers.
    await ensureStreams(nats, cluster ? 90_000 : 30_000);
  } catch (err) {
    // What the nodes said is the one clue to a cluster that did not form.
    if (cluster && err instanceof Error) err.message += `\nthe nodes' last log lines:\n${cluster.logs()}`;
    // Nothing may outlive a failed setup: the test file would never exit.
    await nats.nc.close();
    await (cluster ? cluster.close() : server.stop());
    dir.remove();
    throw err;
  }
  const procs = new Set<Proc>();
  const db = join(dir.path, "mapflow.sqlite");
  const execLog = join(dir.path, "exec.log");
  return {
    get server() {
      return server;
    },
    cluster,
    urls,
    nats,
    dir: dir.path,
    db,
    execLog,
    async start(kind, extra = [], env = {}) {
      const args = [kind, "--nats", urls, "--credentials", (cluster ?? server).credentialsFile, ...(kind === "worker" ? ["--dags", FAULT_DAGS] : []), ...(kind === "projector" ? ["--db", db] : []), ...extra];
      const proc = await startCli(args, READY[kind], 30_000, { MAPFLOW_TEST_EXEC_LOG: execLog, ...env });
      procs.add(proc);
      proc.once("exit", () => procs.delete(proc));
      return proc;
    },
    async restartServer(signal = "SIGKILL", downMs = 0) {
      const { port, storeDir } = server;
      await server.stop(signal);
      await new Promise((r) => setTimeout(r, downMs));
      server = await startNatsServer({ storeDir, port });
      // The test's own client reconnects by itself; wait until JetStream has recovered its streams.
      for (let tries = 0; ; tries++) {
        try {
          await nats.jsm.streams.info(STREAMS.events);
          break;
        } catch (err) {
          if (tries > 100) throw err;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    },
    async close() {
      await Promise.all([...procs].map((p) => stopProcess(p, "SIGKILL")));
      await nats.nc.close();
      await (cluster ? cluster.close() : server.stop());
      dir.remove();
    },
  };
}

export async function trigger(nats: Nats, dagId: string, conf: Record<string, unknown> = {}): Promise<string> {
  const dag = await registeredDag(nats, dagId);
  return requestRun(nats, { dagId, version: dag.version, spec: dag.spec, conf });
}

/**
 * Every event of a run, with sequences, as the log has it now; an
 * InstancesFinished as the outcomes it stands for, each at its sequence,
 * so what the tests count is outcomes however a worker grouped them.
 */
export async function runEvents(nats: Nats, runId: string): Promise<{ seq: number; event: RunEvent }[]> {
  const follow = await followEvents(nats.js, subjects.run(runId));
  const out: { seq: number; event: RunEvent }[] = [];
  try {
    for await (const d of follow) {
      if (d.event?.type === "InstancesFinished") for (const event of outcomesOf(d.event)) out.push({ seq: d.seq, event });
      else if (d.event) out.push({ seq: d.seq, event: d.event as RunEvent });
      if (d.caughtUp) break;
    }
  } finally {
    await follow.stop();
  }
  return out;
}

/** Waits until the run's log holds an event that matches. */
export async function waitForEvent(nats: Nats, runId: string, match: (e: RunEvent) => boolean, timeoutMs = 20_000): Promise<RunEvent> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const found = (await runEvents(nats, runId)).find((e) => match(e.event));
    if (found) return found.event;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no matching event in run ${runId} within ${timeoutMs} ms`);
}

/** Outcome events per `task/mapIndex/try`: the proof that nothing was recorded twice. */
export async function outcomeCounts(nats: Nats, runId: string): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const { event } of await runEvents(nats, runId)) {
    if (event.type !== "InstanceSucceeded" && event.type !== "InstanceFailed") continue;
    const key = `${event.taskId}/${event.mapIndex}/${event.try}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

/** Executions per map index, from the DAGs' exec log: `mapIndex try pid` lines. */
export function executions(execLog: string): { mapIndex: number; try: number; pid: number }[] {
  if (!existsSync(execLog)) return [];
  return readFileSync(execLog, "utf8").trim().split("\n").filter(Boolean).map((line) => {
    const [mapIndex, tryNumber, pid] = line.split(" ").map(Number);
    return { mapIndex: mapIndex!, try: tryNumber!, pid: pid! };
  });
}

function dumpAll(path: string) {
  const db = new Database(path, { readonly: true });
  try {
    return dumpTables(db);
  } finally {
    db.close();
  }
}

function appliedSeq(path: string): number {
  if (!existsSync(path)) return 0;
  const db = new Database(path, { readonly: true });
  try {
    return (db.prepare("SELECT last_seq FROM projection WHERE id = 1").get() as { last_seq: number } | undefined)?.last_seq ?? 0;
  } catch {
    return 0;
  } finally {
    db.close();
  }
}

/** The projector process's SQLite file, once it has applied the whole log, next to a fresh replay of that log. */
export async function projectionAndReplay(nats: Nats, dbPath: string, timeoutMs = 30_000): Promise<{ live: unknown; replay: unknown }> {
  const lastSeq = async () => (await nats.jsm.streams.info(STREAMS.events)).state.last_seq;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const last = await lastSeq();
    while (appliedSeq(dbPath) < last) {
      if (Date.now() > deadline) throw new Error(`the projector applied ${appliedSeq(dbPath)} of ${last} events in ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const compared = { live: dumpAll(dbPath), replay: await replayed(nats, last, dumpTables) };
    // Both read the same log only if it stood still meanwhile: a run still going (one whose append
    // was not acknowledged in a fault, then recorded) moves it on, and then they are read again.
    if ((await lastSeq()) === last || Date.now() > deadline) return compared;
  }
}

/** Exactly one outcome event per instance and try. */
export function assertOnce(counts: Map<string, number>): void {
  for (const [key, n] of counts) assert.equal(n, 1, `${key} has ${n} outcome events`);
}

/**
 * The end of a `wide_faults` run of width n: its reduce saw every item, each
 * `each` instance has one outcome, and the projection equals a replay.
 */
export async function assertWideRun(r: Rig, runId: string, state: RunState, n: number): Promise<void> {
  assert.equal(state.state, "success");
  assert.equal(state.tasks.total!.instances![0]!.result, n * (n - 1));
  const counts = await outcomeCounts(r.nats, runId);
  assert.equal([...counts.keys()].filter((k) => k.startsWith("each/")).length, n);
  assertOnce(counts);
  const { live, replay } = await projectionAndReplay(r.nats, r.db);
  assert.deepEqual(live, replay);
}

/** After a change of coordinator: a new run succeeds, and it and `runId` were each expanded and finished once, with every outcome once. */
export async function assertNextRunAndDecidedOnce(r: Rig, runId: string): Promise<void> {
  const second = await trigger(r.nats, "slow", { ms: 50 });
  assert.equal((await waitForRun(r.nats, second)).state, "success");
  for (const id of [runId, second]) {
    const events = (await runEvents(r.nats, id)).map((e) => e.event);
    assert.equal(events.filter((e) => e.type === "TaskExpanded").length, 1);
    assert.equal(events.filter((e) => e.type === "RunFinished").length, 1);
    assertOnce(await outcomeCounts(r.nats, id));
  }
}
