/**
 * The embedded stack: one nats-server and every service on one machine.
 * `mapflow run` starts it for one run; `mapflow standalone` keeps it up and
 * records its NATS URL in the data dir, where other commands find it.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { configFor, connectNats, drainNats, ensureStreams, startNatsServer, type Durability, type Nats, type NatsServer, type Role } from "../../libs/nats/index.ts";
import type { DagBag } from "../../libs/dags/index.ts";
import { DEFAULT_QUEUE } from "../../libs/names/index.ts";
import { createLogger, type Logger } from "../../libs/log/index.ts";
import { startCoordinator } from "../coordinator/index.ts";
import { DEFAULT_LEASE_MS, whileLeader } from "../coordinator/lease.ts";
import { startProjector, type Projector } from "../projector/index.ts";
import { startWorker, type Worker, type WorkerOptions } from "../worker/index.ts";
import { startUi, type Ui } from "../ui/index.ts";
import { apiToken } from "../ui/auth.ts";

export type StackOptions = {
  dataDir: string;
  bag: DagBag;
  /** Worker processes' worth of in-process workers. */
  workers?: number;
  port?: number;
  log?: Logger;
  /** Passed to each worker (e.g. `startedEventAfterMs`). */
  worker?: Partial<Omit<WorkerOptions, "nats" | "log" | "bag">>;
  /** "replicated" (default flush) or "durable" (fsync before every ack); see the README. */
  durability?: Durability;
  /** The hard limit on one result or work item (default MAPFLOW_MAX_VALUE_BYTES, else 64 MB). */
  maxValueBytes?: number;
  /** Queues the in-process workers serve (default: every queue the DAGs name). */
  queues?: readonly string[];
  /** Serve the web UI here (port 0: any free one); absent: no UI. Its API token is MAPFLOW_API_TOKEN or `<dataDir>/api-token`. */
  ui?: { host?: string; port?: number; publicRead?: boolean };
  /** Let the coordinator request scheduled runs (default true). */
  scheduling?: boolean;
  /** On stop, how long the workers' running tries may take to finish before they are handed back (default DEFAULT_GRACE_MS, 30 s). */
  graceMs?: number;
};

export type Stack = {
  readonly url: string;
  readonly server: NatsServer;
  readonly nats: Nats;
  readonly projector: Projector;
  /** Present when started with `ui`. */
  readonly ui?: Ui;
  stop(): Promise<void>;
};

const STACK_FILE = "stack.json";

/** Every queue the DAGs' tasks name, and the default: one machine serves them all, so a DAG that sends training to `train` runs here too. */
export function queuesOf(bag: DagBag): string[] {
  const queues = new Set([DEFAULT_QUEUE]);
  for (const { dag } of bag.dags.values()) for (const task of dag.spec.tasks) queues.add(task.options.queue);
  return [...queues].sort();
}

/** Where a running `standalone` listens, as it recorded in its data dir. */
export type RunningStack = { readonly url: string; readonly credentialsFile?: string };

/** The stack a running `standalone` recorded in this data dir, if it is still alive. */
export function runningStack(dataDir: string): RunningStack | undefined {
  const file = join(dataDir, STACK_FILE);
  if (!existsSync(file)) return undefined;
  try {
    const { url, pid, credentialsFile } = JSON.parse(readFileSync(file, "utf8")) as { url: string; pid: number; credentialsFile?: string };
    process.kill(pid, 0); // throws when that process is gone
    return { url, credentialsFile };
  } catch {
    return undefined;
  }
}

/** The NATS URL a running `standalone` recorded in this data dir, if it is still alive. */
export function runningStackUrl(dataDir: string): string | undefined {
  return runningStack(dataDir)?.url;
}

export async function startStack(options: StackOptions): Promise<Stack> {
  const log = options.log ?? createLogger("stack");
  const server = await startNatsServer({ storeDir: join(options.dataDir, "nats"), port: options.port, config: configFor(options.durability ?? "replicated"), ownGroup: true });
  const connections: Nats[] = [];
  // Each service as its own role, with exactly the permissions a separate machine's would have.
  const connect = async (name: string, role: Role) => {
    const nats = await connectNats(server.url, name, server.auth(role));
    connections.push(nats);
    return nats;
  };
  const nats = await connect("mapflow-cli", "admin");
  await ensureStreams(nats);
  const coordinatorNats = await connect("mapflow-coordinator", "coordinator");
  const coordinatorLog = log.child({ component: "coordinator" });
  // The same lease as a cluster's coordinators: a second stack on this data dir stands by instead of deciding twice.
  const coordinator = await whileLeader(coordinatorNats, coordinatorLog, `standalone:${process.pid}`, DEFAULT_LEASE_MS, () =>
    startCoordinator({ nats: coordinatorNats, log: coordinatorLog, maxValueBytes: options.maxValueBytes, scheduling: options.scheduling }));
  const dbPath = join(options.dataDir, "mapflow.sqlite");
  const projector = await startProjector({ nats: await connect("mapflow-projector", "projector"), log: log.child({ component: "projector" }), dbPath });
  const workers: Worker[] = [];
  for (const queue of options.queues ?? queuesOf(options.bag)) {
    for (let i = 0; i < (options.workers ?? 1); i++) {
      workers.push(await startWorker({
        nats: await connect(`mapflow-worker-${queue}-${i}`, "worker"), log: log.child({ component: "worker" }), bag: options.bag, maxResultBytes: options.maxValueBytes, ...options.worker, queue,
      }));
    }
  }
  let ui: Ui | undefined;
  if (options.ui) {
    const uiLog = log.child({ component: "ui" });
    ui = await startUi({ nats: await connect("mapflow-ui", "api"), dbPath, log: uiLog, token: apiToken(options.dataDir, uiLog), ...options.ui });
  }
  return {
    url: server.url,
    server,
    nats,
    projector,
    ui,
    async stop() {
      await ui?.stop();
      await Promise.all(workers.map((w) => w.stop({ graceMs: options.graceMs })));
      await coordinator.stop();
      await projector.stop();
      await Promise.all(connections.map(drainNats));
      await server.stop();
    },
  };
}

/** Records where this stack listens, for `trigger` and friends; removed on stop. */
export function recordStack(dataDir: string, url: string, credentialsFile: string): () => void {
  const file = join(dataDir, STACK_FILE);
  writeFileSync(file, JSON.stringify({ url, pid: process.pid, credentialsFile }));
  return () => rmSync(file, { force: true });
}
