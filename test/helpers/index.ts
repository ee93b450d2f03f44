/** Helpers for integration tests: real processes, temp dirs, cleanup. */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { authFor, connectNats, readCredentials, type Nats, type Role } from "../../libs/nats/index.ts";

export const ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const ACCEPTANCE = join(ROOT, "..", "shared", "acceptance");
export const FIXTURES = join(ROOT, "test", "fixtures");
export const FIXTURE_DAGS = join(FIXTURES, "dags");
export const BIN = join(ROOT, "bin", "mapflow.mjs");

export function tempDir(prefix = "mapflow-test-"): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

export type CliResult = { code: number | null; stdout: string; stderr: string };

/** Runs the real `mapflow` command and collects its output. */
export function cli(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: options.cwd ?? ROOT, env: { ...process.env, ...options.env }, stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c));
    child.stderr.on("data", (c: Buffer) => (stderr += c));
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 60_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * Starts a long-running `mapflow` command and resolves once its stdout shows `ready`. `detached`: in a
 * process group of its own, as a shell's foreground job is, for a test to signal as a terminal does.
 */
export function startCli(args: string[], ready: RegExp, timeoutMs = 30_000, env: NodeJS.ProcessEnv = {}, options: { detached?: boolean } = {}): Promise<ChildProcess & { output: () => string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env }, detached: options.detached === true });
    let out = "";
    const timer = setTimeout(() => {
      // SIGTERM first: a command stopped so stops what it started cleanly.
      void stopProcess(child);
      reject(new Error(`mapflow ${args.join(" ")} was not ready in ${timeoutMs} ms:\n${out}`));
    }, timeoutMs);
    const onData = (c: Buffer) => {
      out += c;
      if (ready.test(out)) {
        clearTimeout(timer);
        resolve(Object.assign(child, { output: () => out }));
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", (c: Buffer) => (out += c));
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`mapflow ${args.join(" ")} exited with ${code} before it was ready:\n${out}`));
    });
  });
}

export async function stopProcess(child: ChildProcess, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill(signal);
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  await exited;
  clearTimeout(timer);
}

/** The header the UI's API wants, for a token (a stack's: `stack.ui!.token.value`). */
export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** The API token from the sign-in link a first start prints (`open http://…/#token=…`). */
export function printedToken(output: string): string {
  const token = /\/#token=([\w-]+)/.exec(output)?.[1];
  if (!token) throw new Error(`no #token= link in the output:\n${output}`);
  return token;
}

/** Connects to the `mapflow standalone` running on `dataDir`, as it recorded there, in `role`. */
export async function connectToStandalone(dataDir: string, role: Role = "admin"): Promise<Nats> {
  const { url, credentialsFile } = JSON.parse(readFileSync(join(dataDir, "stack.json"), "utf8")) as { url: string; credentialsFile: string };
  return connectNats(url, "test", authFor(readCredentials(credentialsFile), role));
}
