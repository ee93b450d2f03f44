/**
 * The `mapflow` command line (DESIGN.md §4). Exit codes: 0 success, 1 the
 * run failed, 2 bad input, 3 NATS cannot be reached.
 */
import { Command, Option } from "commander";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { confFor, runReport, type RunState } from "../../libs/core/index.ts";
import { LOG_LEVELS } from "../../libs/core/logline.ts";
import { pickDag } from "../../libs/dags/index.ts";
import { BadInputError } from "../../libs/errors.ts";
import { createLogger, type Logger } from "../../libs/log/index.ts";
import { drainNats, setLogRetention, startCluster, whileJetStreamRecovers, type Durability, type Nats } from "../../libs/nats/index.ts";
import { isToken } from "../../libs/names/index.ts";
import { recordStack, runningStackUrl, startStack } from "../stack/index.ts";
import { startCoordinator } from "../coordinator/index.ts";
import { DEFAULT_LEASE_MS, whileLeader } from "../coordinator/lease.ts";
import { hostname } from "node:os";
import { startProjector } from "../projector/index.ts";
import { DEFAULT_CONCURRENCY, DEFAULT_GRACE_MS, startWorker } from "../worker/index.ts";
import { keepWorkerHeapTight } from "../worker/heap.ts";
import { parseConf, registeredDag, requestRun, waitForRun } from "./runs.ts";
import { renderRun } from "./render.ts";
import { progressReporter } from "./progressbar.ts";
import { cancelRun, clearRun, currentRun, markInstance } from "./operate.ts";
import { DEFAULT_UI_HOST, DEFAULT_UI_PORT, startUi } from "../ui/index.ts";
import { apiToken, tokenNotice } from "../ui/auth.ts";
import { auditCommands } from "./audit.ts";
import { artifactCommands } from "./artifacts.ts";
import { workerCommands } from "./workers.ts";
import { dagCommands } from "./dags.ts";
import { readCommands } from "./reads.ts";
import { logCommands } from "./logs.ts";
import { applySettings, CONFIG_FILE, configPath, readConfig, nameVariablesInHelp } from "./settings.ts";
import { checkDagId, checkRunId, checkTaskId, connectTo, credentialsOption, dataOption, DEFAULT_DATA, durabilityOption, EXIT, fail, loadBag, metricsFor, metricsHostOption, metricsPortOption, natsOption, print, untilSignal, wholeNumber } from "./common.ts";

export const program = new Command("mapflow")
  .description("Dynamic task mapping DAGs on an event-sourced NATS JetStream cluster")
  .addHelpText("after", `
Exit codes: 0 success, 1 the run failed, 2 bad input, 3 NATS cannot be reached.
Example:
  npx mapflow standalone --dags examples          # a stack on this machine (data in .mapflow)
  npx mapflow trigger sample_repeated_mapping --wait
  npx mapflow runs list                           # then: mapflow tasks <runId>, mapflow logs <runId> <taskId>`)
  .option("--config <file>", `settings file (default: MAPFLOW_CONFIG, else ./${CONFIG_FILE} if present); flags and MAPFLOW_* variables win over it`)
  .addOption(new Option("--log-level <level>", "how much the services log (stderr; JSON lines, pretty on a terminal)").choices([...LOG_LEVELS, "silent"]))
  .showHelpAfterError()
  .configureHelp({ showGlobalOptions: true })
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : EXIT.badInput))
  // Every logger reads its level from the environment, so the flag (or the config's logLevel) is put there.
  .hook("preAction", (root) => {
    const level = root.opts().logLevel as string | undefined;
    if (level !== undefined) process.env.MAPFLOW_LOG_LEVEL = level;
  });

program
  .command("run <dagId>")
  .description("run one DAG run to completion on an embedded stack, print it, exit 0 (success) / 1 (failed) / 2 (bad input)")
  .requiredOption("--dags <dir>", "folder of DAG files")
  .option("--conf <json>", "run configuration, a JSON object")
  .option("--json", "print the run as one JSON object")
  .addOption(progressOption())
  .option("--data <dir>", "use the stack running on this data dir, or keep the embedded stack's store here")
  .addOption(natsOption()).addOption(credentialsOption())
  .addOption(durabilityOption())
  .addHelpText("after", "\nExample:\n  npx mapflow run sample_repeated_mapping --dags ../shared/acceptance --json")
  .action(async (dagId: string, opts: { dags: string; conf?: string; json?: boolean; progress: boolean; data?: string; nats?: string; credentials?: string; durability: Durability }) => {
    checkDagId(dagId);
    const conf = parseConf(opts.conf);
    const log = createLogger("mapflow", process.env.MAPFLOW_LOG_LEVEL ?? "warn");
    const bag = await loadBag(opts.dags, log);
    const loaded = pickDag(bag, dagId);
    confFor(loaded.dag.spec, conf); // a bad --conf fails before a stack starts
    const request = { dagId, version: loaded.version, spec: loaded.dag.spec, conf };
    const runOn = async (nats: Nats) => {
      const state = await waitWithProgress(nats, await requestRun(nats, request), opts.progress);
      const report = runReport(state);
      print(Boolean(opts.json), report, renderRun(report));
      process.exitCode = state.state === "success" ? EXIT.ok : EXIT.runFailed;
    };
    // A stack named by --nats, or recorded in an explicitly given --data, runs it; its workers need the same DAG files.
    const existing = opts.nats ?? (opts.data ? runningStackUrl(resolve(opts.data)) : undefined);
    if (existing) {
      const nats = await connectTo({ nats: existing, data: opts.data ?? DEFAULT_DATA, credentials: opts.credentials }, "mapflow-run", "api");
      try {
        await runOn(nats);
      } finally {
        await nats.nc.close();
      }
      return;
    }
    const dataDir = opts.data ? resolve(opts.data) : mkdtempSync(join(tmpdir(), "mapflow-run-"));
    // One run, the one asked for: its DAG's schedule (if any) is for stacks that stay up.
    const stack = await startStack({ dataDir, bag, log, durability: opts.durability, scheduling: false });
    try {
      await runOn(stack.nats);
    } finally {
      await stack.stop();
      if (!opts.data) rmSync(dataDir, { recursive: true, force: true });
    }
  });

program
  .command("standalone")
  .description("start nats-server, coordinator, projector and a worker on this machine and keep them running")
  .option("--dags <dir>", "folder of DAG files", "dags")
  .addOption(dataOption())
  .option("--port <n>", "NATS port (default: a free one)", portNumber("--port"))
  .option("--workers <n>", "in-process workers per queue", wholeNumber("--workers", 1), 1)
  .option("--queues <list>", "queues the in-process workers serve, comma-separated (default: every queue the DAGs name)", queueList)
  .option("--run <dagId>", "once the stack is up, run this DAG and print the run (it keeps serving after)")
  .addOption(durabilityOption())
  .option("--ui-host <host>", "address the web UI listens on", DEFAULT_UI_HOST)
  .option("--ui-port <n>", "web UI port (0: any free one)", portNumber("--ui-port"), DEFAULT_UI_PORT)
  .option("--ui-public-read", "let the web UI's reads through without the API token (actions still need it)")
  .option("--no-ui", "do not serve the web UI")
  .addOption(graceOption())
  .addOption(logRetentionOption())
  .addOption(metricsPortOption()).addOption(metricsHostOption())
  .addHelpText("after", "\nExample:\n  npx mapflow standalone --dags examples --data .mapflow --run sample_repeated_mapping\n  then open the link it prints (http://127.0.0.1:8080/#token=...)\nThe UI's port also serves Prometheus metrics at /metrics (with the API token).")
  .action(async (opts: { dags: string; data: string; port?: number; workers: number; queues?: string[]; run?: string; durability: Durability; ui: boolean; uiHost: string; uiPort: number; uiPublicRead?: boolean; graceMs: number; logRetentionDays?: number; metricsPort?: number; metricsHost: string }) => {
    const dataDir = resolve(opts.data);
    if (opts.run !== undefined) checkDagId(opts.run);
    const existing = runningStackUrl(dataDir);
    if (existing) throw new BadInputError(`a stack is already running on ${dataDir} (${existing}); stop it first or use another --data`);
    const log = createLogger("mapflow");
    const bag = await loadBag(opts.dags, log);
    const ui = opts.ui ? { host: opts.uiHost, port: opts.uiPort, publicRead: opts.uiPublicRead } : undefined;
    const stack = await startStack({ dataDir, bag, port: opts.port, workers: opts.workers, queues: opts.queues, log, durability: opts.durability, ui, graceMs: opts.graceMs });
    await retainLogs(stack.nats, opts.logRetentionDays, log);
    const forget = recordStack(dataDir, stack.url, stack.server.credentialsFile);
    log.info({ nats: stack.url, data: dataDir, credentialsFile: stack.server.credentialsFile, dags: [...bag.dags.keys()] }, "mapflow standalone is running; Ctrl-C stops it");
    process.stdout.write(`mapflow standalone: NATS at ${stack.url}, data in ${dataDir}${stack.ui ? `, web UI at ${stack.ui.url}` : ""}\n`);
    if (stack.ui) process.stdout.write(`${tokenNotice(stack.ui.url, stack.ui.token)}\n`);
    const metrics = await metricsFor(opts, log);
    if (opts.run) {
      const loaded = pickDag(bag, opts.run);
      const runId = await requestRun(stack.nats, { dagId: opts.run, version: loaded.version, spec: loaded.dag.spec, conf: {} });
      process.stdout.write(`${renderRun(runReport(await waitForRun(stack.nats, runId)))}\n`);
    }
    process.stdout.write(`serving; other shells can use it: npx mapflow trigger <dagId> --wait --data ${opts.data}\n`);
    await untilSignal();
    forget();
    await metrics?.stop();
    await stack.stop();
  });

program
  .command("trigger <dagId>")
  .description("start a run of a registered DAG on a running stack")
  .option("--conf <json>", "run configuration, a JSON object")
  .option("--wait", "wait for the run to end; exit 0 / 1 on success / failure")
  .option("--json", "print JSON")
  .addOption(progressOption())
  .addOption(natsOption()).addOption(credentialsOption())
  .addOption(dataOption())
  .addHelpText("after", "\nWith --wait, stderr shows a bar per mapped task on a terminal (a line every few seconds otherwise).\nExample:\n  npx mapflow trigger sample_repeated_mapping --wait --json")
  .action(async (dagId: string, opts: { conf?: string; wait?: boolean; json?: boolean; progress: boolean; nats?: string; data: string }) => {
    checkDagId(dagId);
    const conf = parseConf(opts.conf);
    const nats = await connectTo(opts, "mapflow-trigger", "api");
    try {
      const dag = await registeredDag(nats, dagId);
      const runId = await requestRun(nats, { dagId, version: dag.version, spec: dag.spec, conf });
      if (!opts.wait) {
        print(Boolean(opts.json), { runId, dagId }, runId);
        return;
      }
      const state = await waitWithProgress(nats, runId, opts.progress);
      const report = runReport(state);
      print(Boolean(opts.json), report, renderRun(report));
      process.exitCode = state.state === "success" ? EXIT.ok : EXIT.runFailed;
    } finally {
      await nats.nc.close();
    }
  });

/** Runs an operator request, then prints the run (waiting for it to end with --wait). */
async function operate(opts: { nats?: string; data: string; wait?: boolean; json?: boolean }, runId: string, act: (nats: Nats) => Promise<number>): Promise<void> {
  const nats = await connectTo(opts, "mapflow-operate", "api");
  try {
    const seq = await act(nats);
    const state = opts.wait ? await waitForRun(nats, runId, undefined, seq) : await currentRun(nats, runId);
    const report = runReport(state);
    print(Boolean(opts.json), report, renderRun(report));
    if (opts.wait) process.exitCode = state.state === "success" ? EXIT.ok : EXIT.runFailed;
  } finally {
    await nats.nc.close();
  }
}

/** `--log-retention-days`: how long task log lines are kept (the MF_LOGS stream's max age). */
function logRetentionOption() {
  return new Option("--log-retention-days <n>", "keep task log lines (ctx.log) this many days; older ones age out (default: as the stream has it, 30 when new)")
    .argParser(wholeNumber("--log-retention-days", 1, 3650));
}

/** Applies `--log-retention-days` when given, saying so when it changed the stream. */
async function retainLogs(nats: Nats, days: number | undefined, log: Logger): Promise<void> {
  if (days === undefined) return;
  if (await setLogRetention(nats, days * 24 * 60 * 60_000)) log.info({ days }, "task log lines are now kept this many days");
}

function progressOption() {
  return new Option("--no-progress", "show no progress on stderr while waiting");
}

/** Waits for the run, showing its mapped tasks' progress on stderr unless told not to. */
async function waitWithProgress(nats: Nats, runId: string, show: boolean): Promise<RunState> {
  if (!show) return waitForRun(nats, runId);
  const reporter = progressReporter();
  let state: RunState | undefined;
  try {
    state = await waitForRun(nats, runId, undefined, 0, reporter.update);
    return state;
  } finally {
    // Also when the wait fails: a terminal must get its cursor back.
    reporter.finish(state);
  }
}

function queueList(value: string): string[] {
  const queues = value.split(",").map((q) => q.trim()).filter(Boolean);
  const bad = queues.find((q) => !isToken(q));
  if (bad !== undefined || queues.length === 0) throw new BadInputError(`--queues takes queue names (letters, digits, '_' and '-') separated by commas, got '${value}'`);
  return queues;
}

function portNumber(flag: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0 || n > 65535) throw new BadInputError(`${flag} takes a port number from 0 to 65535, got '${value}'`);
    return n;
  };
}

/** `--grace-ms`: how long a stopping worker lets its running tries finish. */
function graceOption() {
  return new Option("--grace-ms <ms>", "on SIGTERM / SIGINT, let running tries finish this long, then hand the rest back to other workers").argParser((value) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0) throw new BadInputError(`--grace-ms takes a whole number of milliseconds ≥ 0, got '${value}'`);
    return n;
  }).default(DEFAULT_GRACE_MS);
}

const mapIndexes = (value: string, previous: number[] = []): number[] => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < -1) throw new BadInputError(`--map-index takes a whole number ≥ -1, got '${value}'`);
  return [...previous, n];
};

program
  .command("clear <runId> <taskId>")
  .description("re-run a task of a finished run (all of it, or chosen instances); old tries stay in the log")
  .option("--map-index <n>", "an instance to re-run (repeat for several); default: the whole task", mapIndexes)
  .option("--downstream", "also re-run what derives from it downstream")
  .option("--wait", "wait for the run to end again; exit 0 / 1 on success / failure")
  .option("--json", "print the run as JSON")
  .addOption(natsOption()).addOption(credentialsOption())
  .addOption(dataOption())
  .addHelpText("after", "\nExample:\n  npx mapflow clear 01J… add --map-index 2 --downstream --wait")
  .action(async (runId: string, taskId: string, opts: { mapIndex?: number[]; downstream?: boolean; wait?: boolean; json?: boolean; nats?: string; data: string }) => {
    checkRunId(runId);
    checkTaskId(taskId);
    await operate(opts, runId, (nats) => clearRun(nats, runId, taskId, opts.mapIndex ?? null, Boolean(opts.downstream)));
  });

program
  .command("cancel <runId>")
  .description("stop a run: running instances are told to stop, queued work is dropped, the run ends cancelled")
  .option("--wait", "wait until the run has ended")
  .option("--json", "print the run as JSON")
  .addOption(natsOption()).addOption(credentialsOption())
  .addOption(dataOption())
  .addHelpText("after", "\nExample:\n  npx mapflow cancel 01J… --wait")
  .action(async (runId: string, opts: { wait?: boolean; json?: boolean; nats?: string; data: string }) => {
    checkRunId(runId);
    await operate(opts, runId, (nats) => cancelRun(nats, runId));
    if (opts.wait) process.exitCode = EXIT.ok;
  });

program
  .command("mark <runId> <taskId>")
  .description("set one instance's state by hand (success or failed)")
  .requiredOption("--map-index <n>", "the instance (-1 for an unmapped task)", (v) => mapIndexes(v)[0]!)
  .requiredOption("--state <state>", "success or failed")
  .option("--json", "print the run as JSON")
  .addOption(natsOption()).addOption(credentialsOption())
  .addOption(dataOption())
  .addHelpText("after", "\nExample:\n  npx mapflow mark 01J… add --map-index 3 --state success")
  .action(async (runId: string, taskId: string, opts: { mapIndex: number; state: string; json?: boolean; nats?: string; data: string }) => {
    checkRunId(runId);
    checkTaskId(taskId);
    await operate(opts, runId, (nats) => markInstance(nats, runId, taskId, opts.mapIndex, opts.state));
  });

program
  .command("cluster")
  .description("start a 3-node JetStream cluster on this machine's loopback ports and keep it running")
  .option("--data <dir>", "store directories of the three nodes", ".mapflow-cluster")
  .option("--ports <list>", "client ports of the three nodes; route ports are these + 2000", "4231,4232,4233")
  .addHelpText("after", "\nThen point every service at all three.\nExample:\n  npx mapflow cluster --data .mapflow-cluster\n  npx mapflow worker --nats nats://127.0.0.1:4231,nats://127.0.0.1:4232,nats://127.0.0.1:4233 --credentials .mapflow-cluster/credentials.json --dags examples")
  .action(async (opts: { data: string; ports: string }) => {
    const ports = opts.ports.split(",").map(Number);
    if (ports.length !== 3 || ports.some((p) => !Number.isInteger(p) || p < 1 || p > 63535)) {
      throw new BadInputError(`--ports takes three port numbers, e.g. 4231,4232,4233; got '${opts.ports}'`);
    }
    const cluster = await startCluster(resolve(opts.data), ports.map((port) => ({ port, routePort: port + 2000 })));
    process.stdout.write(`mapflow cluster: ${cluster.urls.join(",")} (stores in ${resolve(opts.data)}; services connect with --credentials ${cluster.credentialsFile})\n`);
    await untilSignal();
    await cluster.close();
  });

/**
 * Starts a service, waiting out a JetStream that is recovering (a node
 * restarting, a stream electing its leader) instead of exiting.
 */
function startWhenReady<T>(log: Logger, start: () => Promise<T>): Promise<T> {
  return whileJetStreamRecovers(start, 120_000, {
    maxDelayMs: 5000,
    onRetry: (err, attempt) => log.warn({ err, attempt }, "JetStream is not answering yet; starting again shortly"),
  });
}

/** Starts one service against an existing NATS and keeps it running. */
function serviceCommand(name: string, description: string) {
  return program.command(name).description(description).addOption(natsOption()).addOption(credentialsOption()).addOption(dataOption());
}

/** A service command that also serves Prometheus metrics when given `--metrics-port`. */
function measuredServiceCommand(name: string, description: string) {
  return serviceCommand(name, description).addOption(metricsPortOption()).addOption(metricsHostOption());
}

type MetricsOpts = { metricsPort?: number; metricsHost: string };

measuredServiceCommand("coordinator", "run the coordinator (folds the log, appends decisions, publishes work)")
  .option("--max-map-length <n>", "instances one task may expand to, unless it sets maxMapLength (default 100000)", wholeNumber("--max-map-length", 1))
  .option("--lease-ms <ms>", "leadership lease: a standby takes over this long after the leader dies (default 5000)", wholeNumber("--lease-ms", 1))
  .addOption(logRetentionOption())
  .addHelpText("after", "\nRun two or more for a standby: one leads (a lease in JetStream KV), the others wait.\nOn SIGTERM / SIGINT it stops deciding, releases the lease (a standby takes over at once) and exits 0.\nExample:\n  npx mapflow coordinator --nats nats://10.0.0.5:4222,nats://10.0.0.6:4222")
  .action(async (opts: { nats?: string; data: string; maxMapLength?: number; leaseMs?: number; logRetentionDays?: number } & MetricsOpts) => {
    const nats = await connectTo(opts, "mapflow-coordinator", "coordinator");
    const log = createLogger("coordinator");
    await retainLogs(nats, opts.logRetentionDays, log);
    const metrics = await metricsFor(opts, log);
    const service = await whileLeader(nats, log, `${hostname()}:${process.pid}`, opts.leaseMs ?? DEFAULT_LEASE_MS, () =>
      startCoordinator({ nats, log, maxMapLength: opts.maxMapLength }));
    process.stdout.write("coordinator ready\n");
    const signal = await untilSignal();
    log.info({ signal }, "stopping: no more decisions; releasing the lease");
    await service.stop();
    await metrics?.stop();
    await drainNats(nats);
    log.info("coordinator stopped");
  });

measuredServiceCommand("projector", "run a projector (folds the log into SQLite at <data>/mapflow.sqlite)")
  .option("--db <file>", "SQLite file of the read model")
  .addHelpText("after", "\n'mapflow runs list' and 'mapflow tasks' read it with --db.\nExample:\n  npx mapflow projector --nats nats://10.0.0.5:4222 --db /var/lib/mapflow/read.sqlite")
  .action(async (opts: { nats?: string; data: string; db?: string } & MetricsOpts) => {
    const nats = await connectTo(opts, "mapflow-projector", "projector");
    const log = createLogger("projector");
    const metrics = await metricsFor(opts, log);
    const service = await startWhenReady(log, () => startProjector({ nats, log, dbPath: resolve(opts.db ?? join(opts.data, "mapflow.sqlite")) }));
    process.stdout.write("projector ready\n");
    const signal = await untilSignal();
    log.info({ signal }, "stopping: writing what is folded, then closing the read model");
    await service.stop();
    await metrics?.stop();
    await drainNats(nats);
    log.info("projector stopped");
  });

measuredServiceCommand("worker", "run a worker: pulls work from a queue and runs task code from --dags")
  .requiredOption("--dags <dir>", "folder of DAG files")
  .option("--queue <name>", "queue to serve", "default")
  .option("--concurrency <n>", "instances at once (short async tasks need many in flight; lower it for memory-heavy tasks)", wholeNumber("--concurrency", 1), DEFAULT_CONCURRENCY)
  .option("--name <name>", "worker name recorded on each result")
  .option("--ack-wait-ms <ms>", "redeliver an item whose worker is silent this long (default 30000)", wholeNumber("--ack-wait-ms", 1))
  .option("--heartbeat-ms <ms>", "how often a running item reports it is alive (default a third of --ack-wait-ms)", wholeNumber("--heartbeat-ms", 1))
  .option("--max-deliver <n>", "deliveries of one item before it is recorded as failed (default 5)", wholeNumber("--max-deliver", 1))
  .option("--max-ack-pending <n>", "work items the queue hands out unacknowledged at once, across its workers (default 10000)", wholeNumber("--max-ack-pending", 1))
  .addOption(graceOption())
  .addHelpText("after", "\nOn SIGTERM / SIGINT it takes no more work, lets running tries finish for --grace-ms, hands the rest back\n(nak with a delay: another worker runs them; not failures) and exits 0. A second signal stops it at once.\nExample:\n  npx mapflow worker --nats nats://10.0.0.5:4222 --dags ./dags --queue default")
  .action(async (opts: { nats?: string; data: string; dags: string; queue: string; concurrency: number; name?: string; ackWaitMs?: number; heartbeatMs?: number; maxDeliver?: number; maxAckPending?: number; graceMs: number } & MetricsOpts) => {
    if (!isToken(opts.queue)) throw new BadInputError(`queue '${opts.queue}' may hold only letters, digits, '_' and '-'`);
    keepWorkerHeapTight();
    const log = createLogger("worker");
    const bag = await loadBag(opts.dags, log);
    const nats = await connectTo(opts, "mapflow-worker", "worker");
    const metrics = await metricsFor(opts, log);
    const service = await startWhenReady(log, () => startWorker({
      nats, log, bag, queue: opts.queue, concurrency: opts.concurrency, name: opts.name,
      ackWaitMs: opts.ackWaitMs, heartbeatMs: opts.heartbeatMs, maxDeliver: opts.maxDeliver, maxAckPending: opts.maxAckPending,
    }));
    process.stdout.write(`worker ${service.name} ready\n`);
    const signal = await untilSignal();
    log.info({ signal, graceMs: opts.graceMs }, "stopping");
    await service.stop({ graceMs: opts.graceMs });
    await metrics?.stop();
    await drainNats(nats);
  });

serviceCommand("ui", "serve the web UI and its JSON API (reads a projection, talks to NATS for history, logs and actions)")
  .option("--host <host>", "address to listen on; anything but 127.0.0.1 exposes the UI to the network", DEFAULT_UI_HOST)
  .option("--port <n>", "port (0: any free one)", portNumber("--port"), DEFAULT_UI_PORT)
  .option("--db <file>", "read this projection, written by a projector beside this UI; without it the UI runs its own into <data>/ui.sqlite")
  .option("--public-read", "let reads (GET) through without the API token; actions still need it")
  .addHelpText("after", "\nThe API token is MAPFLOW_API_TOKEN, or <data>/api-token (made and printed as a link on the first start).\nExample:\n  npx mapflow ui --nats nats://10.0.0.5:4222 --port 8080")
  .action(async (opts: { nats?: string; data: string; host: string; port: number; db?: string; publicRead?: boolean }) => {
    const log = createLogger("ui");
    if (opts.db && !existsSync(opts.db)) throw new BadInputError(`--db ${opts.db} does not exist; point it at a projector's SQLite file, or leave it out to run one here`);
    const token = apiToken(resolve(opts.data), log);
    const nats = await connectTo(opts, "mapflow-ui", "api");
    const projector = opts.db ? undefined : await startWhenReady(log, () => startProjector({ nats, log, dbPath: resolve(join(opts.data, "ui.sqlite")) }));
    const ui = await startUi({ nats, log, dbPath: resolve(opts.db ?? join(opts.data, "ui.sqlite")), host: opts.host, port: opts.port, token, publicRead: opts.publicRead });
    process.stdout.write(`ui ready at ${ui.url}\n${tokenNotice(ui.url, token)}\n`);
    await untilSignal();
    await ui.stop();
    await projector?.stop();
    await drainNats(nats);
  });

auditCommands(program);
artifactCommands(program);
workerCommands(program);
dagCommands(program);
readCommands(program);
logCommands(program);
nameVariablesInHelp(program);

/** Runs the command line and exits with its code (bin/mapflow.mjs calls it; tests import `program` without running it). */
export async function main(argv: readonly string[] = process.argv): Promise<never> {
  try {
    const config = configPath(argv.slice(2));
    applySettings(program, config ? readConfig(config, program.commands.map((c) => c.name())) : undefined);
    await program.parseAsync([...argv]);
    // Connections and timers may linger; the command is done.
    process.exit(process.exitCode ?? 0);
  } catch (err) {
    fail(err);
  }
}
