/** What every `mapflow` command shares: exit codes, the stack it talks to, how it reports. */
import { Option } from "commander";
import { resolve } from "node:path";
import { loadDags, type DagBag } from "../../libs/dags/index.ts";
import { BadInputError, UnreachableError } from "../../libs/errors.ts";
import { createLogger, type Logger } from "../../libs/log/index.ts";
import { DEFAULT_METRICS_HOST, serveMetrics, type MetricsServer } from "../../libs/metrics/index.ts";
import { authFor, connectNats, DURABILITY_MODES, ensureStreams, isTransient, jetStreamUnavailable, readCredentials, refusal, type Nats, type NatsAuth, type Role } from "../../libs/nats/index.ts";
import { isTaskId, isToken } from "../../libs/names/index.ts";
import { runningStack } from "../stack/index.ts";

export const EXIT = { ok: 0, runFailed: 1, badInput: 2, unreachable: 3 } as const;
export const DEFAULT_DATA = ".mapflow";

/** The NATS URL the command connected to, for an error that comes later (a JetStream that stops answering). */
let triedUrl: string | undefined;

export function fail(err: unknown): never {
  const refused = refusal(err);
  if (refused) {
    err = new BadInputError(`NATS refused this user the ${refused.operation} on '${refused.subject}': the command runs with another role's credentials than it needs (see nats-roles.conf); pass the stack's credentials file with --credentials`);
  }
  if (err instanceof BadInputError) {
    process.stderr.write(`mapflow: ${err.message}\n`);
    process.exit(EXIT.badInput);
  }
  // Any JetStream request of a command (not only an append) may meet a cluster without its quorum.
  if (isTransient(err) && !(err instanceof UnreachableError)) err = jetStreamUnavailable(err, "JetStream did not answer");
  if (err instanceof UnreachableError) {
    // Every exit 3 names the NATS it tried, with what to check.
    const tried = triedUrl !== undefined && !err.message.includes(triedUrl) ? ` (NATS tried: ${triedUrl})` : "";
    process.stderr.write(`mapflow: ${err.message}${tried}\n`);
    process.exit(EXIT.unreachable);
  }
  process.stderr.write(`mapflow: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(EXIT.runFailed);
}

export async function loadBag(dir: string, log = createLogger("cli")): Promise<DagBag> {
  const bag = await loadDags(dir);
  for (const e of bag.errors) log.error({ file: e.file }, `DAG file failed to load: ${e.message}`);
  return bag;
}

/** How a command finds its stack: `--nats`, else the one running on `--data`; and its credentials. */
export type StackOptions = { nats?: string; data: string; credentials?: string };

/** `--nats <url>`, else the stack recorded in the data dir. */
export function stackUrl(opts: StackOptions): string | undefined {
  return opts.nats ?? runningStack(resolve(opts.data))?.url;
}

/**
 * Who to connect as: `--credentials` (or its setting, MAPFLOW_NATS_CREDENTIALS:
 * see settings.ts), a file holding every role's password, from which the
 * command takes its own role;
 * else MAPFLOW_NATS_USER and MAPFLOW_NATS_PASSWORD; else the credentials of
 * the stack running on `--data`; else nobody (a server without users).
 */
export function authOf(opts: StackOptions, role: Role): NatsAuth | undefined {
  if (opts.credentials) return authFor(readCredentials(resolve(opts.credentials)), role);
  const user = process.env.MAPFLOW_NATS_USER;
  const pass = process.env.MAPFLOW_NATS_PASSWORD;
  if (user || pass) {
    if (!user || !pass) throw new BadInputError("set both MAPFLOW_NATS_USER and MAPFLOW_NATS_PASSWORD, or neither");
    return { user, pass };
  }
  const running = runningStack(resolve(opts.data));
  if (running?.credentialsFile && (opts.nats === undefined || opts.nats === running.url)) return authFor(readCredentials(running.credentialsFile), role);
  return undefined;
}

/** Connects as `role` (see nats-roles.conf for what each may do). */
export async function connectTo(opts: StackOptions, name: string, role: Role): Promise<Nats> {
  const url = stackUrl(opts);
  if (!url) {
    throw new UnreachableError(`no stack is running on data dir '${resolve(opts.data)}' and no --nats <url> was given; start one with 'mapflow standalone --dags <dir>' or pass --nats`);
  }
  triedUrl = url;
  const nats = await connectNats(url, name, authOf(opts, role));
  await ensureStreams(nats, 10_000);
  return nats;
}

/*
 * Ids a command is given become NATS subject tokens: each is checked before
 * anything connects, so a `.`, `*`, `>` or space is a clear error (exit 2)
 * and never a wildcard that reaches other runs.
 */

export function checkDagId(dagId: string): void {
  if (!isToken(dagId)) throw new BadInputError(`'${dagId}' is not a valid DAG id: use letters, digits, '_' and '-' only`);
}

export function checkRunId(runId: string): void {
  if (!isToken(runId)) throw new BadInputError(`'${runId}' is not a valid run id: run ids hold letters, digits, '_' and '-' only ('run' and 'trigger' print them)`);
}

export function checkTaskId(taskId: string): void {
  if (!isTaskId(taskId)) throw new BadInputError(`'${taskId}' is not a valid task id: use letters, digits, '_' and '-', and '.' only between a task group's id and its task's`);
}

export function print(json: boolean, value: object, text: string): void {
  process.stdout.write(json ? `${JSON.stringify(value)}\n` : `${text}\n`);
}

/**
 * Resolves on the first SIGTERM or SIGINT, when a service begins its clean
 * stop. A second one stops the process at once, as a kill would: nothing is
 * half-written either way (work in flight is redelivered after its ack
 * deadline, and recorded once).
 */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((done) => {
    const first = (signal: NodeJS.Signals) => {
      process.off("SIGINT", first);
      process.off("SIGTERM", first);
      const again = (second: NodeJS.Signals) => {
        process.stderr.write(`mapflow: ${second} while stopping: stopping now, without waiting\n`);
        process.exit(second === "SIGINT" ? 130 : 143);
      };
      process.once("SIGINT", again);
      process.once("SIGTERM", again);
      done(signal);
    };
    process.on("SIGINT", first);
    process.on("SIGTERM", first);
  });
}

/** `--metrics-port` and `--metrics-host`, for the commands that serve Prometheus metrics. */
export const metricsPortOption = () =>
  new Option("--metrics-port <n>", "serve Prometheus metrics at http://<metrics-host>:<n>/metrics (0: any free port; default: none)").argParser((value) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0 || n > 65535) throw new BadInputError(`--metrics-port takes a port number from 0 to 65535, got '${value}'`);
    return n;
  });
export const metricsHostOption = () => new Option("--metrics-host <host>", "address the metrics port listens on; anything but 127.0.0.1 shows them to the network").default(DEFAULT_METRICS_HOST);

/** Serves the metrics when `--metrics-port` was given, and says where on stdout (the port may have been 0). */
export async function metricsFor(opts: { metricsPort?: number; metricsHost: string }, log: Logger): Promise<MetricsServer | undefined> {
  if (opts.metricsPort === undefined) return undefined;
  const server = await serveMetrics({ port: opts.metricsPort, host: opts.metricsHost, log });
  process.stdout.write(`metrics at ${server.url}\n`);
  return server;
}

/** A commander parser for a whole number from `min` (to `max`), with an error that names the flag and the range. */
export function wholeNumber(flag: string, min: number, max?: number): (value: string) => number {
  const range = max === undefined ? `≥ ${min}` : `from ${min} to ${max}`;
  return (value) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || (max !== undefined && n > max)) throw new BadInputError(`${flag} takes a whole number ${range}, got '${value}'`);
    return n;
  };
}

export const natsOption = () => new Option("--nats <url>", "NATS server URL(s), comma-separated");
export const credentialsOption = () =>
  new Option("--credentials <file>", "the roles' NATS passwords (a stack writes <data>/nats/credentials.json); default: the stack's on --data");
export const durabilityOption = () =>
  new Option("--durability <mode>", "embedded nats-server: replicated (default flush) or durable (fsync before every ack)").choices(DURABILITY_MODES).default("replicated");
export const dataOption = () => new Option("--data <dir>", "data dir (store, read model, running stack)").default(DEFAULT_DATA);

