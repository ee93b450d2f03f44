// Operating on runs through the CLI on a standalone stack: clear (removed instances), mark, cancel, params, run timeouts.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { cli, FIXTURES, startCli, stopProcess, tempDir } from "./helpers/index.ts";

const DAGS = join(FIXTURES, "operate");
const dir = tempDir();
let standalone: Awaited<ReturnType<typeof startCli>>;

type Report = {
  runId: string;
  state: string;
  tasks: Record<string, { state: string; error?: string; instances: { mapIndex: number; state: string; tries: number; result: unknown; error?: string }[] }>;
};

before(async () => {
  // Only the default queue in-process: the queue test brings its own worker for "special".
  standalone = await startCli(["standalone", "--dags", DAGS, "--data", dir.path, "--no-ui", "--queues", "default"], /mapflow standalone: NATS at/);
});

after(async () => {
  if (standalone) await stopProcess(standalone, "SIGINT");
  dir.remove();
});

async function mapflow(args: string[]): Promise<{ code: number | null; report: Report; stderr: string }> {
  const { code, stdout, stderr } = await cli([...args, "--data", dir.path]);
  let report: Report;
  try {
    report = JSON.parse(stdout) as Report;
  } catch {
    assert.fail(`mapflow ${args.join(" ")} printed no JSON (exit ${code}):\n${stdout}\n${stderr}`);
  }
  return { code, report, stderr };
}

const view = (r: Report, taskId: string) => r.tasks[taskId]!.instances.map((i) => [i.mapIndex, i.state, i.tries]);

test("clear --downstream re-runs a finished run; a shorter upstream marks surplus instances removed; mark sets an instance", async () => {
  const first = await mapflow(["trigger", "shrink", "--wait", "--json"]);
  assert.equal(first.code, 0, first.stderr);
  assert.deepEqual(first.report.tasks.total!.instances[0]!.result, 100);
  const runId = first.report.runId;

  const cleared = await mapflow(["clear", runId, "list", "--downstream", "--wait", "--json"]);
  assert.equal(cleared.code, 0, cleared.stderr);
  assert.deepEqual(view(cleared.report, "each"), [[0, "success", 2], [1, "success", 2], [2, "removed", 1], [3, "removed", 1]]);
  assert.deepEqual(cleared.report.tasks.total!.instances.map((i) => [i.result, i.tries]), [[30, 2]]);

  const one = await mapflow(["clear", runId, "each", "--map-index", "1", "--wait", "--json"]);
  assert.equal(one.code, 0, one.stderr);
  assert.deepEqual(view(one.report, "each").slice(0, 2), [[0, "success", 2], [1, "success", 3]]);

  const marked = await mapflow(["mark", runId, "each", "--map-index", "0", "--state", "failed", "--json"]);
  assert.equal(marked.code, 0, marked.stderr);
  assert.equal(marked.report.tasks.each!.instances[0]!.state, "failed");
  assert.equal(marked.report.tasks.each!.state, "failed");

  const bad = await cli(["clear", runId, "each", "--map-index", "9", "--data", dir.path]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /task 'each' of run .* has no instance with map index 9/);
});

test("clearing one instance --downstream re-runs only the instances that derive from it, and the reduce", async () => {
  const first = await mapflow(["trigger", "lineage", "--wait", "--json"]);
  assert.equal(first.code, 0, first.stderr);
  const cleared = await mapflow(["clear", first.report.runId, "a", "--map-index", "1", "--downstream", "--wait", "--json"]);
  assert.equal(cleared.code, 0, cleared.stderr);
  const tries = (id: string) => cleared.report.tasks[id]!.instances.map((i) => i.tries);
  assert.deepEqual(tries("a"), [1, 2, 1]);
  assert.deepEqual(tries("b"), [1, 2, 1]);
  assert.deepEqual(tries("total"), [2]);
  assert.deepEqual(cleared.report.tasks.total!.instances[0]!.result, 60);
});

test("cancel stops the running instances and ends the run cancelled", async () => {
  const { stdout } = await cli(["trigger", "sleepy", "--json", "--data", dir.path]);
  const { runId } = JSON.parse(stdout) as { runId: string };
  await new Promise((r) => setTimeout(r, 800)); // let the instances start
  const started = Date.now();
  const cancelled = await mapflow(["cancel", runId, "--wait", "--json"]);
  assert.equal(cancelled.code, 0, cancelled.stderr);
  assert.equal(cancelled.report.state, "cancelled");
  assert.ok(cancelled.report.tasks.slow!.instances.every((i) => i.state === "failed" || i.state === "skipped"));
  assert.equal(cancelled.report.tasks.after!.state, "skipped");
  assert.ok(Date.now() - started < 15_000, "the run ended without waiting for its 20 s instances");
  const again = await cli(["cancel", runId, "--data", dir.path]);
  assert.equal(again.code, 2);
  assert.match(again.stderr, /already ended \(cancelled\)/);

  // Workers were told to stop this run; a clear afterwards must still get its new tries run.
  const rerun = await mapflow(["clear", runId, "slow", "--downstream", "--wait", "--json"]);
  assert.equal(rerun.code, 0, rerun.stderr);
  assert.equal(rerun.report.state, "success");
  assert.deepEqual(rerun.report.tasks.after!.instances[0]!.result, 3);
});

test("a run timeout fails the unfinished instances with a timeout error", async () => {
  const { code, report } = await mapflow(["trigger", "run_timeout", "--wait", "--json"]);
  assert.equal(code, 1);
  assert.equal(report.state, "failed");
  assert.equal(report.tasks.quick!.state, "success");
  assert.equal(report.tasks.slow!.state, "failed");
  assert.match(report.tasks.slow!.instances[0]!.error!, /passed its runTimeoutMs of 1500 ms/);
  assert.equal(report.tasks.after!.state, "failed", "not skipped");
});

test("--conf fills declared params and feeds the list a mapped task expands over; an undeclared key is refused", async () => {
  const ok = await mapflow(["trigger", "with_params", "--conf", '{"items":["x","y","z"]}', "--wait", "--json"]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.deepEqual(ok.report.tasks.shout!.instances.map((i) => i.result), ["X!", "Y!", "Z!"]);
  const bad = await cli(["trigger", "with_params", "--conf", '{"itmes":[]}', "--data", dir.path]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--conf key 'itmes' is not a param of DAG 'with_params' \(it declares: items, suffix\)/);
  const wrong = await cli(["run", "with_params", "--dags", DAGS, "--conf", '{"items":"x"}']);
  assert.equal(wrong.code, 2);
  assert.match(wrong.stderr, /--conf key 'items' of DAG 'with_params' must be a list/);
});

test("queue routes a task's work to the workers started with --queue", async () => {
  const special = await startCli(["worker", "--queue", "special", "--dags", DAGS, "--data", dir.path], /worker \S+ ready/);
  try {
    const { code, report, stderr } = await mapflow(["trigger", "queues", "--wait", "--json"]);
    assert.equal(code, 0, stderr);
    const workers = (id: string) => report.tasks[id]!.instances.map((i) => (i as { worker?: string }).worker ?? "");
    assert.ok(workers("special").every((w) => w.endsWith(":special")), workers("special").join(","));
    assert.ok(workers("plain").every((w) => w.endsWith(":default")), workers("plain").join(","));
    assert.deepEqual(report.tasks.special!.instances.map((i) => i.result), [2, 4]);
  } finally {
    await stopProcess(special);
  }
});
