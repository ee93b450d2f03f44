/**
 * Runs a shell task. The command string is the only thing the shell parses;
 * every other argument reaches it as an environment variable, so a value
 * holding quotes, `$()` or backticks cannot change what runs.
 */
import { spawn } from "node:child_process";
import type { TaskContext } from "../../libs/sdk/types.ts";

export type ShellSpec = { cwd?: string; env?: Readonly<Record<string, string>> };

const MAX_OUTPUT = 1024 * 1024;

function envValue(value: unknown): string {
  return typeof value === "string" ? value : JSON.stringify(value);
}

export async function runShell(args: Readonly<Record<string, unknown>>, spec: ShellSpec, ctx: TaskContext): Promise<string> {
  const { command, ...rest } = args;
  if (typeof command !== "string" || command.trim() === "") {
    throw new Error(`shell task '${ctx.taskId}' needs a 'command' string argument, got ${command === undefined ? "none" : typeof command}`);
  }
  const env: Record<string, string> = { ...(process.env as Record<string, string>), ...(spec.env ?? {}) };
  for (const [name, value] of Object.entries(rest)) env[name] = envValue(value);
  env.MAPFLOW_RUN_ID = ctx.runId;
  env.MAPFLOW_TASK_ID = ctx.taskId;
  env.MAPFLOW_MAP_INDEX = String(ctx.mapIndex);
  env.MAPFLOW_TRY_NUMBER = String(ctx.tryNumber);

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
  const keep = (text: string) => (text.length > MAX_OUTPUT ? text.slice(-MAX_OUTPUT) : text);
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout = keep(stdout + chunk)));
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr = keep(stderr + chunk)));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (exitCode) => resolve(exitCode));
  }).finally(() => ctx.signal.removeEventListener("abort", killGroup));
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
