// Shell tasks without a server: what the SDK refuses when the DAG is defined, the command's environment, and a run of the command itself.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { dag, NonRetryableError, shell, task } from "../libs/sdk/index.ts";
import type { ShellOperator } from "../libs/sdk/shell.ts";
import type { TaskContext } from "../libs/sdk/types.ts";
import type { LogLine } from "../libs/core/logline.ts";
import { capturing } from "../libs/log/index.ts";
import { runShell, shellEnv } from "../services/worker/shell.ts";
import { HOSTILE } from "./fixtures/safety/shell_hostile.ts";

const define = (build: () => void) => () => dag({ id: "d" }, build);

test("given a secret's name in env or as a literal argument, when the DAG is defined, then it is refused and secretEnv is named instead", () => {
  assert.throws(define(() => shell("s", { env: { API_KEY: "k" } })({ command: "x" })),
    /shell task 's': env API_KEY looks like a secret, .* name it in secretEnv: \["API_KEY"\] and set it in the workers' environment instead/);
  assert.throws(define(() => shell("s").partial({ command: "x", DB_PASSWORD: "pw" }).expand({ N: [1] })),
    /shell task 's': argument DB_PASSWORD looks like a secret, and its value would be written into the DAG's registered spec .*secretEnv: \["DB_PASSWORD"\]/);
  assert.throws(define(() => shell("s").partial({ command: "x" }).expand({ GITHUB_TOKEN: ["a", "b"] })), /argument GITHUB_TOKEN looks like a secret/);
  assert.throws(define(() => shell("s").partial({ command: "x" }).expandKwargs([{ apiKey: "k" }])), /argument apiKey looks like a secret/);

  // A value from upstream is no literal: it travels as that task's result, and the worker hides it from this one's output.
  assert.doesNotThrow(define(() => {
    const t = task("t", () => "v")({});
    shell("s")({ command: "x", DB_PASSWORD: t });
  }));
  assert.doesNotThrow(define(() => shell("s", { env: { SORT_KEY: "id", max_tokens: "5" }, secretEnv: ["API_KEY"] })({ command: "x" })), "names that only look alike pass");
});

test("given names that cannot be environment variables, or that clash, when the DAG is defined, then each is refused saying why", () => {
  const refused: [() => unknown, RegExp][] = [
    [define(() => shell("s", { env: { "A-B": "1" } })({ command: "x" })), /env 'A-B' is not an environment variable name \(letters, digits and '_', not starting with a digit\)/],
    [define(() => shell("s").partial({ command: "x" }).expand({ "1x": [1] })), /argument '1x' is not an environment variable name/],
    [define(() => shell("s", { secretEnv: ["A B"] })({ command: "x" })), /secretEnv 'A B' is not an environment variable name/],
    [define(() => shell("s", { secretEnv: ["K_KEY", "K_KEY"] })({ command: "x" })), /secretEnv names K_KEY twice/],
    [define(() => shell("s", { env: { TOKEN_URL: "u" }, secretEnv: ["TOKEN_URL"] })({ command: "x" })), /TOKEN_URL is in both env and secretEnv/],
    [define(() => shell("s", { secretEnv: ["API_KEY"] })({ command: "x", API_KEY: "k" })), /argument API_KEY would replace the secret of that name/],
    [define(() => shell("s", { env: { MAPFLOW_RUN_ID: "x" } })({ command: "x" })), /env 'MAPFLOW_RUN_ID' uses the reserved prefix MAPFLOW_/],
    [define(() => shell("s", { secretEnv: "API_KEY" as unknown as string[] })({ command: "x" })), /secretEnv must be a list of environment variable names/],
    [define(() => shell("s", { env: { N: 1 as unknown as string } })({ command: "x" })), /env N must be a string, got number/],
  ];
  for (const [build, message] of refused) assert.throws(build, message);
});

test("given a shell task with no command, or a command that is not a string, when the DAG is defined, then it is refused saying how to give one", () => {
  const refused: [() => unknown, RegExp][] = [
    [define(() => shell("s")({ N: 1 } as never)), /shell task 's' is given no command: pass it as an argument, e.g. shell\("s"\)\(\{ command: "echo hi" \}\), or map over it/],
    [define(() => shell("s").expand({ N: [1, 2] } as never)), /shell task 's' is given no command/],
    [define(() => shell("s").expandKwargs([{ command: "echo 1" }, { N: 2 }] as never)), /shell task 's' is given no command/],
    [define(() => shell("s")({ command: 42 } as never)), /shell task 's': command must be a string \(a shell command line\), got number/],
    [define(() => shell("s").expand({ command: ["echo 1", null] } as never)), /command must be a string .*, got null/],
    [define(() => shell("s").expandKwargs([{ command: ["echo"] }] as never)), /command must be a string .*, got object/],
  ];
  for (const [build, message] of refused) assert.throws(build, message);
  // Given in a partial, mapped, in every literal item, by an upstream's output, or to an empty map: all fine.
  assert.doesNotThrow(define(() => shell("s").partial({ command: "echo $N" }).expand({ N: [1, 2] })));
  assert.doesNotThrow(define(() => shell("s").expand({ command: ["echo 1", "echo 2"] })));
  assert.doesNotThrow(define(() => shell("s").expandKwargs([{ command: "echo 1" }, { command: "echo 2", N: 2 }] as never)));
  assert.doesNotThrow(define(() => shell("s").expandKwargs([])));
  assert.doesNotThrow(define(() => {
    const commands = task("commands", () => [{ command: "echo 1" }])({});
    const line = task("line", () => "echo 2")({});
    shell("a").expandKwargs(commands as never);
    shell("b")({ command: line });
  }));
});

const ids = { dagId: "d", runId: "R", taskId: "t", mapIndex: 2, tryNumber: 1 };
const op = (extra: Partial<ShellOperator> = {}): ShellOperator => ({ kind: "shell", ...extra });
const worker = { PATH: "/usr/bin:/bin", HOME: "/home/w", LC_ALL: "C.UTF-8", NATS_URL: "nats://user:pw@host", WORKER_DB_PASSWORD: "wpw", API_KEY: "the-key" };

test("given a worker's environment, when a command's is made, then it holds the base, the task's env, arguments, named secrets and ids, and nothing else", () => {
  const { env, secrets } = shellEnv(ids, { N: 3, LIST: [1, "a"], S: "plain" }, op({ env: { REGION: "eu" }, secretEnv: ["API_KEY"] }), worker);
  assert.deepEqual(env, {
    PATH: "/usr/bin:/bin", HOME: "/home/w", LC_ALL: "C.UTF-8", REGION: "eu", N: "3", LIST: '[1,"a"]', S: "plain", API_KEY: "the-key",
    MAPFLOW_DAG_ID: "d", MAPFLOW_RUN_ID: "R", MAPFLOW_TASK_ID: "t", MAPFLOW_MAP_INDEX: "2", MAPFLOW_TRY_NUMBER: "1",
  });
  assert.deepEqual(secrets, ["the-key"]);

  const inherited = shellEnv(ids, {}, op({ inheritEnv: true }), worker);
  assert.equal(inherited.env["NATS_URL"], worker.NATS_URL, "inheritEnv passes the worker's whole environment on");
  assert.deepEqual(inherited.secrets, ["wpw", "the-key"], "…and hides the values of names that look like secrets");

  // Another worker may have the secret, so that one is retried; bad names and values are the same on every try.
  assert.throws(() => shellEnv(ids, {}, op({ secretEnv: ["NOT_THERE_KEY"] }), worker), (e: unknown) => !(e instanceof NonRetryableError) && /shell task 't': secretEnv NOT_THERE_KEY is not set in this worker's environment/.test((e as Error).message));
  assert.throws(() => shellEnv(ids, { "a b": 1 }, op(), worker), (e: unknown) => e instanceof NonRetryableError && /argument 'a b' cannot reach the command/.test(e.message));
  assert.throws(() => shellEnv(ids, { V: "a\0b" }, op(), worker), (e: unknown) => e instanceof NonRetryableError && /argument V holds a NUL character/.test(e.message) && !e.message.includes("a\0b"));
});

/** A try's context as the worker makes it, with its log lines captured as they would be stored. */
function tryOf(taskId = "t"): { ctx: TaskContext; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const log = capturing(pino({ level: "warn" }, { write: () => {} }))({ runId: "R", taskId }, (line) => lines.push(line));
  const ctx = { ...ids, taskId, log, conf: {}, signal: new AbortController().signal } as unknown as TaskContext;
  return { ctx, lines };
}

test("given hostile values, when a shell command echoes each, then it echoes exactly that value and does nothing else", async () => {
  const cwd = mkdtempSync(join(tmpdir(), "mapflow-shell-"));
  try {
    for (const value of HOSTILE) {
      const { ctx, lines } = tryOf();
      const hex = await runShell({ command: "printf '%s' \"$VALUE\" | od -An -v -tx1 | tr -d ' \\n'; echo", VALUE: value }, op({ cwd }), ctx);
      assert.equal(Buffer.from(hex, "hex").toString("utf8"), value);
      assert.deepEqual(lines.map((l) => l.msg), [hex], "the try's log holds only the echo");
      if (!value.includes("\n")) assert.equal(await runShell({ command: 'printf "%s\\n" "$VALUE"', VALUE: value }, op({ cwd }), tryOf().ctx), value);
    }
    assert.deepEqual(readdirSync(cwd), [], "nothing was made or run in the command's directory");
    assert.ok(!existsSync(join(process.cwd(), "pwned")));
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
});

test("given a secret, when the command prints it on stdout and stderr and fails, then the log lines, the result and the error show [redacted]", async () => {
  const spec = op({ secretEnv: ["API_KEY"] });
  const env = { PATH: process.env["PATH"], API_KEY: "k3y\nwith a newline" };
  const printed = tryOf();
  const result = await runShell({ command: 'printf "key=%s\\n" "$API_KEY"; printf "%s" "$API_KEY" >&2; printf "%s" "$API_KEY"' }, spec, printed.ctx, env);
  assert.equal(result, "[redacted]");
  assert.deepEqual(printed.lines.map((l) => [l.level, l.msg]), [["info", "key=[redacted]"], ["info", "[redacted]"], ["warn", "[redacted]"]]);

  await assert.rejects(runShell({ command: 'echo "bad $API_KEY" >&2; exit 4' }, spec, tryOf().ctx, env), { message: "command exited with code 4: bad [redacted]" });
});
