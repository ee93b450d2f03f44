// The mapping features end to end: `npx mapflow run … --json` on a real embedded stack.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { cli, FIXTURES } from "./helpers/index.ts";

const DAGS = join(FIXTURES, "mapping");

type Report = {
  state: string;
  tasks: Record<string, { state: string; mapped: boolean; error?: string; instances: { mapIndex: number; state: string; tries: number; label?: string; result: unknown; error?: string }[] }>;
};

async function run(dagId: string, env: Record<string, string> = {}): Promise<{ code: number | null; report: Report; stderr: string }> {
  const { code, stdout, stderr } = await cli(["run", dagId, "--dags", DAGS, "--json"], { env });
  let report: Report;
  try {
    report = JSON.parse(stdout) as Report;
  } catch {
    assert.fail(`no JSON run report (exit ${code}):\n${stdout}\n${stderr}`);
  }
  return { code, report, stderr };
}

const results = (r: Report, taskId: string) => r.tasks[taskId]!.instances.filter((i) => i.state === "success").map((i) => i.result);

test("expandKwargs, zip, out.map, concat, objects, mapped → mapped and labels in one run", async () => {
  const { code, report, stderr } = await run("mapping_inputs");
  assert.equal(code, 0, stderr);
  assert.equal(report.state, "success");
  assert.deepEqual(results(report, "load"), ["a.csv:5", "b.txt:5", "c.csv:5"]);
  assert.deepEqual(report.tasks.load!.instances.map((i) => i.label), ["file=a.csv", "file=b.txt", "file=c.csv"]);
  assert.deepEqual(results(report, "pair"), ["a.csv|1", "b.txt|2"]);
  assert.deepEqual(results(report, "pair__1"), ["a.csv|1", "b.txt|2", "c.csv|none"]);
  assert.deepEqual(results(report, "size"), ["small=1", "large=3"]);
  assert.deepEqual(results(report, "keep_csv"), ["a.csv", null, "c.csv"]);
  assert.deepEqual(results(report, "upper"), ["A.CSV", "C.CSV"], "the null result is dropped from the next expansion");
  assert.deepEqual(results(report, "everything"), [["a.csv:5", "b.txt:5", "c.csv:5", "A.CSV", "C.CSV", "end"]]);
});

test("a mapped task group: per-index failure, mapping inside the group, a partial-failure-aware reduce", async () => {
  const { code, report, stderr } = await run("mapped_group");
  assert.equal(code, 0, stderr);
  const states = (id: string) => report.tasks[id]!.instances.map((i) => i.state);
  assert.deepEqual(states("model.fit"), ["success", "failed", "success"]);
  assert.deepEqual(results(report, "model.fold"), [11, 12]);
  assert.deepEqual(states("model.score"), ["success", "upstream_failed", "skipped"]);
  assert.deepEqual(results(report, "model.score"), [23]);
  assert.deepEqual(results(report, "best"), [{ all: [23], failed: [1] }]);
  assert.deepEqual(results(report, "each_score"), [46], "mapping over a mapped group's output");
  assert.equal(report.tasks.each_score!.state, "success");
  assert.equal(report.state, "success", "the leaves, best and each_score, succeeded");
});

test("bad inputs fail their task with the reason: not mappable, over maxMapLength, over the global limit", async () => {
  const { code, report } = await run("bad_inputs", { MAPFLOW_MAX_MAP_LENGTH: "4" });
  assert.equal(code, 1);
  assert.equal(report.state, "failed");
  assert.equal(report.tasks.per_char!.state, "failed");
  assert.match(report.tasks.per_char!.error!, /task 'per_char' cannot map over 'c': upstream task 'word' returned a string, but mapping needs a list/);
  assert.match(report.tasks.too_many!.error!, /would expand to 4 instances, over its maxMapLength of 3/);
  assert.match(report.tasks.wide!.error!, /would expand to 5 instances, over the global maxMapLength .* of 4/);
});

test("retries with backoff report their tries; a timeout fails its instance only; trigger rules pick what runs", async () => {
  const { code, report, stderr } = await run("options");
  assert.equal(code, 0, stderr);
  assert.deepEqual(report.tasks.flaky!.instances.map((i) => [i.result, i.tries]), [["0@1", 1], ["1@3", 3]]);
  assert.deepEqual(report.tasks.slow!.instances.map((i) => i.state), ["success", "failed"]);
  assert.match(report.tasks.slow!.instances[1]!.error!, /timed out after 300 ms/);
  assert.equal(report.tasks.on_failure!.state, "success");
  assert.equal(report.tasks.if_all_good!.state, "success");
  assert.equal(report.tasks.only_if_skipped!.state, "skipped");
  assert.equal(report.state, "success", "every leaf succeeded or was skipped");
});

test("maxActivePerRun holds a run's instances to the limit, through npx mapflow run", async () => {
  const { code, stdout, stderr } = await cli(["run", "limits", "--dags", join(FIXTURES, "dags"), "--json"]);
  assert.equal(code, 0, stderr);
  const report = JSON.parse(stdout) as Report;
  const peak = (id: string) => Math.max(...results(report, id).map(Number));
  assert.ok(peak("per_run") <= 2, `saw ${peak("per_run")} at once`);
  assert.ok(peak("global") <= 3, `saw ${peak("global")} at once`);
  assert.ok(peak("free") > 2, "the unlimited task overlaps, so the checks above can fail");
});
