/**
 * Runs a shell task. The command string is the only thing the shell parses;
 * every other argument reaches it as an environment variable, so a value
 * holding quotes, `$()`, backticks or newlines cannot change what runs.
 *
 * The command's environment is explicit: a small base taken from the
 * worker's (below), then the task's `env`, its arguments, its `secretEnv`
 * read from the worker's environment, and the try's ids (MAPFLOW_*). The
 * values of secrets (secretEnv, and arguments named like secrets) are
 * replaced by `[redacted]` in everything written down: the output lines
 * stored as the try's log, the result (the last line) and the error.
 */
import { spawn } from "node:child_process";
import type { TaskContext } from "../../libs/sdk/types.ts";
import { ENV_NAME_RULE, isEnvName, type ShellOperator } from "../../libs/sdk/shell.ts";
import { isSecretName, maskSecrets } from "../../libs/secrets/index.ts";
import { NonRetryableError } from "../../libs/errors.ts";

const MAX_OUTPUT = 1024 * 1024;

/**
 * What a command gets from the worker's environment unless its task sets
 * `inheritEnv`: enough to find programs, a home and a locale, nothing that
 * authenticates. The worker's environment holds its own credentials and the
 * secrets every other task names in secretEnv; a command sees only the
 * secrets its own task names.
 */
const BASE_ENV: ReadonlySet<string> = new Set(["PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR"]);
const isBaseEnv = (name: string) => BASE_ENV.has(name) || name.startsWith("LC_");

export type ShellEnv = {
  readonly env: Record<string, string>;
  /** Values to hide from everything the command's output becomes. */
  readonly secrets: readonly string[];
};

function envValue(value: unknown): string {
  return typeof value === "string" ? value : JSON.stringify(value) ?? "";
}

/** The command's environment for one try, from its arguments (without `command`), its task's options and the worker's environment. */
export function shellEnv(ctx: Pick<TaskContext, "dagId" | "runId" | "taskId" | "mapIndex" | "tryNumber">, args: Readonly<Record<string, unknown>>, spec: ShellOperator, workerEnv: NodeJS.ProcessEnv): ShellEnv {
  const task = `shell task '${ctx.taskId}'`;
  const env: Record<string, string> = {};
  const secrets: string[] = [];
  for (const [name, value] of Object.entries(workerEnv)) {
    if (value === undefined || !(spec.inheritEnv || isBaseEnv(name))) continue;
    env[name] = value;
    if (isSecretName(name)) secrets.push(value);
  }
  Object.assign(env, spec.env);
  const secretNames = new Set(spec.secretEnv);
  for (const [name, value] of Object.entries(args)) {
    // Checked when the DAG was defined, but expandKwargs over an upstream's output names its arguments only now.
    if (!isEnvName(name)) throw new NonRetryableError(`${task}: argument '${name}' cannot reach the command, as an environment variable name is ${ENV_NAME_RULE}`);
    if (secretNames.has(name)) throw new NonRetryableError(`${task}: argument ${name} would replace the secret of that name (secretEnv); give it another name`);
    const text = envValue(value);
    // Said without the value, which may be a secret.
    if (text.includes("\0")) throw new NonRetryableError(`${task}: argument ${name} holds a NUL character, which an environment variable cannot carry`);
    env[name] = text;
    if (isSecretName(name)) secrets.push(text);
  }
  for (const name of secretNames) {
    const value = workerEnv[name];
    if (value === undefined) throw new Error(`${task}: secretEnv ${name} is not set in this worker's environment; set it where the workers that serve this task's queue start`);
    env[name] = value;
    secrets.push(value);
  }
  env["MAPFLOW_DAG_ID"] = ctx.dagId;
  env["MAPFLOW_RUN_ID"] = ctx.runId;
  env["MAPFLOW_TASK_ID"] = ctx.taskId;
  env["MAPFLOW_MAP_INDEX"] = String(ctx.mapIndex);
  env["MAPFLOW_TRY_NUMBER"] = String(ctx.tryNumber);
  return { env, secrets };
}

/** The last MAX_OUTPUT characters, from a line's start if any: a cut line could begin with the tail of a secret no mask would match. */
function keepTail(text: string): string {
  if (text.length <= MAX_OUTPUT) return text;
  const tail = text.slice(-MAX_OUTPUT);
  const lineStart = tail.indexOf("\n");
  return lineStart === -1 ? tail : tail.slice(lineStart + 1);
}

export async function runShell(args: Readonly<Record<string, unknown>>, spec: ShellOperator, ctx: TaskContext, workerEnv: NodeJS.ProcessEnv = process.env): Promise<string> {
  const { command, ...rest } = args;
  if (typeof command !== "string" || command.trim() === "") {
    throw new NonRetryableError(`shell task '${ctx.taskId}' needs a 'command' string argument, got ${command === undefined ? "none" : typeof command}`);
  }
  const { env, secrets } = shellEnv(ctx, rest, spec, workerEnv);
  const hide = (text: string) => (secrets.length ? maskSecrets(text, secrets) : text);

  // Its own process group, so a timeout stops the command's children too.
  const child = spawn("/bin/sh", ["-c", command], { cwd: spec.cwd, env, stdio: ["ignore", "pipe", "pipe"], detached: true });
  const killGroup = () => {
    try {
      process.kill(-child.pid!, "SIGKILL");
    } catch {
      // already gone
    }
  };
  ctx.signal.addEventListener("abort", killGroup, { once: true });
  let stdout = "";
  let stderr = "";
  // Keep the tail only: the result is the last line, and logs need not hold gigabytes.
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout = keepTail(stdout + chunk)));
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr = keepTail(stderr + chunk)));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (exitCode) => resolve(exitCode));
  }).finally(() => ctx.signal.removeEventListener("abort", killGroup));
  stdout = hide(stdout);
  stderr = hide(stderr);
  for (const line of stdout.split("\n").filter(Boolean)) ctx.log.info({ stream: "stdout" }, line);
  for (const line of stderr.split("\n").filter(Boolean)) ctx.log.warn({ stream: "stderr" }, line);
  if (code !== 0) {
    const tail = stderr.trim().split("\n").slice(-5).join("\n");
    throw new Error(`command exited with code ${code}${tail ? `: ${tail}` : ""}`);
  }
  // Like Airflow's BashOperator: the result is the last line written to stdout.
  const lines = stdout.replace(/\n+$/, "").split("\n");
  return lines[lines.length - 1] ?? "";
}
