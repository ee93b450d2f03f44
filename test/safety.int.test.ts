// On a real nats-server: secrets given to shell tasks by name stay out of the log and the stored task logs,
// a command's environment holds only what its task names, and results msgpack cannot carry fail their instance.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadDags, pickDag, type DagBag } from "../libs/dags/index.ts";
import { runReport, type RunReport } from "../libs/core/index.ts";
import { decodeRecord, readRecords, readTryLogs } from "../libs/nats/index.ts";
import { createLogger } from "../libs/log/index.ts";
import { startStack, type Stack } from "../services/stack/index.ts";
import { registeredDag, requestRun, waitForRun } from "../services/cli/runs.ts";
import { FIXTURES, tempDir } from "./helpers/index.ts";
import { OTHER_SECRET, SECRET } from "./fixtures/safety/shell_secrets.ts";

const dir = tempDir();
let stack: Stack;
let bag: DagBag;
const saved = { ...process.env };

before(async () => {
  // The worker's environment: the secret a task names, and one it does not. Tasks failing on purpose are not printed.
  process.env["SHELL_TEST_API_KEY"] = SECRET;
  process.env["SHELL_TEST_OTHER_TOKEN"] = OTHER_SECRET;
  delete process.env["SHELL_TEST_NOT_SET_KEY"];
  bag = await loadDags(join(FIXTURES, "safety"));
  stack = await startStack({ dataDir: dir.path, bag, log: createLogger("test", "fatal") });
});

after(async () => {
  await stack?.stop();
  dir.remove();
  for (const name of ["SHELL_TEST_API_KEY", "SHELL_TEST_OTHER_TOKEN"]) {
    if (saved[name] === undefined) delete process.env[name];
    else process.env[name] = saved[name];
  }
});

async function run(dagId: string): Promise<{ runId: string; report: RunReport }> {
  const { version, dag } = pickDag(bag, dagId);
  const runId = await requestRun(stack.nats, { dagId, version, spec: dag.spec, conf: {} });
  return { runId, report: runReport(await waitForRun(stack.nats, runId)) };
}

/** Every event in the log, as JSON text. */
async function wholeLog(): Promise<string> {
  const events = [];
  for await (const record of readRecords(stack.nats)) events.push(decodeRecord(record));
  return JSON.stringify(events);
}

test("given a secret named in secretEnv, when shell tasks print it, then neither the log, the stored task logs, the results nor the errors hold it", async () => {
  const { runId, report } = await run("shell_secrets");
  const tasks = report.tasks;

  assert.equal(tasks["use_secret"]!.state, "success");
  assert.equal(tasks["use_secret"]!.instances[0]!.result, "[redacted]", "the command had the secret, and its printed value is hidden");
  const [lines] = await readTryLogs(stack.nats, runId, "use_secret", -1);
  assert.deepEqual(lines!.lines.map((l) => [l.level, l.msg]), [
    ["info", "calling with [redacted]"],
    ["info", "[redacted]"],
    ["warn", "auth=[redacted]"],
  ]);

  assert.equal(tasks["fail_with_secret"]!.state, "failed");
  assert.equal(tasks["fail_with_secret"]!.instances[0]!.error, "command exited with code 3: rejected key [redacted]");

  assert.equal(tasks["missing_secret"]!.state, "failed");
  assert.match(tasks["missing_secret"]!.instances[0]!.error!, /shell task 'missing_secret': secretEnv SHELL_TEST_NOT_SET_KEY is not set in this worker's environment/);

  const names = String(tasks["explicit_env"]!.instances[0]!.result).trim().split(" ");
  for (const name of ["PATH", "REGION", "SHELL_TEST_API_KEY", "MAPFLOW_RUN_ID", "MAPFLOW_TASK_ID", "MAPFLOW_MAP_INDEX", "MAPFLOW_TRY_NUMBER"]) assert.ok(names.includes(name), `${name} is set: ${names}`);
  assert.ok(!names.includes("SHELL_TEST_OTHER_TOKEN"), "a worker's variable the task does not name is not passed on");
  assert.deepEqual(names.filter((n) => !/^(PATH|HOME|USER|LOGNAME|LANG|LANGUAGE|TZ|TMPDIR|LC_\w+|REGION|SHELL_TEST_API_KEY|MAPFLOW_\w+|PWD|OLDPWD|SHLVL|_)$/.test(n)), [], "nothing else");

  assert.equal(tasks["inherited_env"]!.instances[0]!.result, "[redacted]", "inheritEnv passes the worker's environment on, hiding values named like secrets");
  assert.equal(tasks["upstream_secret"]!.instances[0]!.result, "got [redacted]", "an argument named like a secret is hidden too");

  const log = await wholeLog();
  const stored = JSON.stringify(await Promise.all(Object.keys(tasks).map((t) => readTryLogs(stack.nats, runId, t, -1))));
  for (const secret of [SECRET, OTHER_SECRET]) {
    assert.ok(!log.includes(secret), "no event holds the secret");
    assert.ok(!stored.includes(secret), "no stored log line holds the secret");
  }
  const registered = JSON.stringify(await registeredDag(stack.nats, "shell_secrets"));
  assert.ok(!registered.includes(SECRET) && !registered.includes("secretEnv"), "the registered spec holds no secret's value (the command reads it by name)");
});

test("given tasks returning values msgpack cannot carry as they are, then each fails its instance saying what and where, and the rest succeed", async () => {
  const { report } = await run("bad_results");
  const byKind = report.tasks["returns"]!.instances.map((i) => [i.state, i.error ?? null]);
  const prefix = "task 'returns' returned a value that cannot be stored: ";
  const plain = "; return plain data: numbers, strings, lists, objects";
  assert.deepEqual(byKind, [
    ["success", null],
    ["failed", `${prefix}result.model.predict is a function${plain}`],
    ["failed", `${prefix}result[1] is a BigInt (1180591620717411303424n); return it as a string, or as a number when it fits${plain}`],
    ["failed", `${prefix}result.self refers back to result, which contains it, so it has no end${plain}`],
    ["failed", `${prefix}result.scores is a Map (it would arrive as {}); return Object.fromEntries(map)${plain}`],
    ["failed", `${prefix}result.pending is a Promise (it would arrive as {}); await it before returning${plain}`],
  ]);
  const fine = report.tasks["returns"]!.instances[0]!.result as Record<string, unknown>;
  assert.deepEqual(fine["when"], new Date(0), "a Date arrives as a Date");
  assert.ok(!("missing" in fine), "an undefined field is left out, as in JSON");

  const { report: again } = await run("bad_results");
  assert.equal(again.tasks["returns"]!.instances[0]!.state, "success", "the worker carried on");
});
