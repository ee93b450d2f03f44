/** What every `mapflow` command shares: exit codes, the stack it talks to, how it reports. */
import { Option } from "commander";
import { resolve } from "node:path";
import { loadDags, type DagBag } from "../../libs/dags/index.ts";
import { BadInputError, UnreachableError } from "../../libs/errors.ts";
import { createLogger } from "../../libs/log/index.ts";
import { connectNats, DURABILITY_MODES, ensureStreams, isTransient, jetStreamUnavailable, type Nats } from "../../libs/nats/index.ts";
import { isTaskId, isToken } from "../../libs/names/index.ts";
import { runningStackUrl } from "../stack/index.ts";

export const EXIT = { ok: 0, runFailed: 1, badInput: 2, unreachable: 3 } as const;
export const DEFAULT_DATA = ".mapflow";

export function fail(err: unknown): never {
  if (err instanceof BadInputError) {
    process.stderr.write(`mapflow: ${err.message}\n`);
    process.exit(EXIT.badInput);
  }
  // Any JetStream request of a command (not only an append) may meet a cluster without its quorum.
  if (isTransient(err) && !(err instanceof UnreachableError)) err = jetStreamUnavailable(err, "JetStream did not answer");
  if (err instanceof UnreachableError) {
    process.stderr.write(`mapflow: ${err.message}\n`);
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

/** `--nats <url>`, else the stack recorded in the data dir. */
export function stackUrl(opts: { nats?: string; data: string }): string | undefined {
  return opts.nats ?? runningStackUrl(resolve(opts.data));
}

export async function connectTo(opts: { nats?: string; data: string }, name: string): Promise<Nats> {
  const url = stackUrl(opts);
  if (!url) {
    throw new UnreachableError(`no stack is running on data dir '${resolve(opts.data)}' and no --nats <url> was given; start one with 'mapflow standalone --dags <dir>' or pass --nats`);
  }
  const nats = await connectNats(url, name);
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

export function untilSignal(): Promise<void> {
  return new Promise((done) => {
    process.once("SIGINT", () => done());
    process.once("SIGTERM", () => done());
  });
}

export const natsOption = () => new Option("--nats <url>", "NATS server URL(s), comma-separated");
export const durabilityOption = () =>
  new Option("--durability <mode>", "embedded nats-server: replicated (default flush) or durable (fsync before every ack)").choices(DURABILITY_MODES).default("replicated");
export const dataOption = () => new Option("--data <dir>", "data dir (store, read model, running stack)").default(DEFAULT_DATA);

