// Clear, cancel, mark, run timeouts and params on the pure core (no server).
import { test } from "node:test";
import assert from "node:assert/strict";
import { dag, task, taskGroup } from "../libs/sdk/index.ts";
import { confFor, decide, evolve, fold, runReport, workFor, type RunState } from "../libs/core/index.ts";
import type { RunEvent } from "../libs/events/index.ts";
import { BadInputError } from "../libs/errors.ts";
import type { Ref } from "../libs/sdk/types.ts";
import { operate, resultsOf, simulate } from "./helpers/simulate.ts";

const clear = (taskId: string, mapIndexes: number[] | null, downstream: boolean, at = 1000): RunEvent =>
  ({ type: "ClearRequested", runId: "R", taskId, mapIndexes, downstream, at });
const tries = (state: RunState, taskId: string) => state.tasks[taskId]!.instances!.map((i) => i.try);

test("clearing a whole task re-runs it with its next try; the run finishes again", async () => {
  const d = dag({ id: "c1" }, () => {
    task("t", ({ v }: { v: number }) => v).expand({ v: [1, 2] });
  });
  const sim = await simulate(d);
  await operate(d, sim, clear("t", null, false));
  assert.equal(sim.state.state, "success");
  assert.deepEqual(tries(sim.state, "t"), [2, 2]);
  assert.equal(sim.events.filter((e) => e.type === "InstanceSucceeded").length, 4, "the first tries stay in the log");
  assert.equal(sim.events.filter((e) => e.type === "RunFinished").length, 2);
});

test("an upstream that re-runs shorter marks the surplus downstream instances removed", async () => {
  let calls = 0;
  const d = dag({ id: "c2" }, () => {
    const list = task("list", () => (++calls === 1 ? [1, 2, 3, 4] : [1, 2]))({});
    task("each", ({ v }: { v: number }) => v * 10).expand({ v: list });
  });
  const sim = await simulate(d);
  await operate(d, sim, clear("list", null, true));
  const each = runReport(sim.state).tasks.each!;
  assert.deepEqual(each.instances.map((i) => [i.mapIndex, i.state, i.tries]), [[0, "success", 2], [1, "success", 2], [2, "removed", 1], [3, "removed", 1]]);
  assert.equal(each.state, "success");
  assert.equal(sim.state.state, "success");
});

test("clearing instance i with downstream re-runs only what derives from i in an aligned chain, and the reduce", async () => {
  const d = dag({ id: "c3" }, () => {
    const a = task("a", ({ v }: { v: number }) => (v === 2 ? null : v)).expand({ v: [0, 1, 2, 3] });
    const b = task("b", ({ v }: { v: number }) => v + 100).expand({ v: a });
    task("sum", ({ xs }: { xs: number[] }) => xs.reduce((x, y) => x + y, 0))({ xs: b });
  });
  const sim = await simulate(d);
  // a[3] is b[2] (a[2] returned null and was dropped from b's expansion).
  await operate(d, sim, clear("a", [3], true));
  assert.deepEqual(tries(sim.state, "a"), [1, 1, 1, 2]);
  assert.deepEqual(tries(sim.state, "b"), [1, 1, 2]);
  assert.deepEqual(tries(sim.state, "sum"), [2]);
  assert.deepEqual(resultsOf(sim.state, "sum"), [304]);
});

test("clearing one group index re-runs only that index of the group's downstream tasks", async () => {
  const d = dag({ id: "c4" }, () => {
    taskGroup("g", ({ v }: { v: Ref<number> }) => {
      const fit = task("fit", ({ v }: { v: number }) => v)({ v });
      task("score", ({ m }: { m: number }) => m * 2)({ m: fit });
    }).expand({ v: [1, 2, 3] });
  });
  const sim = await simulate(d);
  await operate(d, sim, clear("g.fit", [1], true));
  assert.deepEqual(tries(sim.state, "g.fit"), [1, 2, 1]);
  assert.deepEqual(tries(sim.state, "g.score"), [1, 2, 1]);
  assert.equal(sim.state.state, "success");
});

test("a cleared instance that fails again leaves its derived downstream instance upstream_failed", async () => {
  const d = dag({ id: "c5" }, () => {
    taskGroup("g", ({ v }: { v: Ref<number> }) => {
      const fit = task("fit", ({ v }: { v: number }) => v)({ v });
      task("score", ({ m }: { m: number }) => m * 2)({ m: fit });
    }).expand({ v: [1, 2] });
  });
  const sim = await simulate(d);
  await operate(d, sim, clear("g.fit", [0], true), { fail: (w) => w.taskId === "g.fit" });
  assert.deepEqual(sim.state.tasks["g.score"]!.instances!.map((i) => [i.state, i.try]), [["upstream_failed", 1], ["success", 1]]);
  assert.equal(sim.state.state, "failed");
});

function running(d: ReturnType<typeof dag>, at = 1): RunState {
  const state = fold([{ type: "RunRequested", runId: "R", dagId: d.spec.id, dagVersion: "v", spec: d.spec, conf: {}, at }])!;
  for (const e of decide(state, at + 1)) evolve(state, e);
  return state;
}

const chain = () => dag({ id: "stop", runTimeoutMs: 1000 }, () => {
  const t = task("t", ({ v }: { v: number }) => v).expand({ v: [0, 1, 2] });
  task("after", ({ xs }: { xs: number[] }) => xs)({ xs: t });
});

test("cancel: the coordinator ends the run cancelled; running tries fail, unstarted ones and pending tasks are skipped", () => {
  const state = running(chain());
  evolve(state, { type: "InstanceStarted", runId: "R", taskId: "t", mapIndex: 1, try: 1, worker: "w", startedAt: 3, at: 4 });
  evolve(state, { type: "InstanceSucceeded", runId: "R", taskId: "t", mapIndex: 0, try: 1, result: 0, worker: "w", startedAt: 3, at: 4 });
  evolve(state, { type: "RunCancelRequested", runId: "R", at: 5 });
  const events = decide(state, 6);
  assert.deepEqual(events, [{ type: "RunFinished", runId: "R", state: "cancelled", at: 6 }]);
  evolve(state, events[0]!);
  assert.equal(state.state, "cancelled");
  assert.deepEqual(state.tasks.t!.instances!.map((i) => i.state), ["success", "failed", "skipped"]);
  assert.equal(state.tasks.t!.instances![1]!.error!.name, "Cancelled");
  assert.equal(state.tasks.after!.state, "skipped");
  assert.deepEqual(decide(state, 7), []);
});

test("a run timeout fails the unfinished instances and tasks with a timeout error, never skips them", () => {
  const state = running(chain());
  assert.deepEqual(decide(state, 500), [], "before the deadline nothing happens");
  const [timedOut] = decide(state, 1001);
  assert.equal(timedOut!.type, "RunTimedOut");
  evolve(state, timedOut!);
  assert.deepEqual(state.tasks.t!.instances!.map((i) => i.state), ["failed", "failed", "failed"]);
  assert.match(state.tasks.t!.instances![0]!.error!.message, /passed its runTimeoutMs of 1000 ms/);
  assert.equal(state.tasks.after!.state, "failed");
  const [finished] = decide(state, 1002);
  assert.deepEqual(finished, { type: "RunFinished", runId: "R", state: "failed", at: 1002 });
});

test("mark sets one instance's state; the task's state follows", async () => {
  const d = dag({ id: "mark" }, () => {
    task("t", ({ v }: { v: number }) => {
      if (v === 1) throw new Error("no");
      return v;
    }).expand({ v: [0, 1] });
  });
  const sim = await simulate(d);
  assert.equal(sim.state.tasks.t!.state, "failed");
  evolve(sim.state, { type: "InstanceMarked", runId: "R", taskId: "t", mapIndex: 1, state: "success", at: 99 });
  assert.equal(sim.state.tasks.t!.instances![1]!.state, "success");
  assert.equal(sim.state.tasks.t!.state, "success");
});

test("a clear's work is the chosen instances' new tries; a clear of a running run changes nothing", async () => {
  const d = dag({ id: "w" }, () => {
    task("t", ({ v }: { v: number }) => v).expand({ v: [0, 1, 2] });
  });
  const live = running(d);
  evolve(live, clear("t", [1], false));
  assert.deepEqual(tries(live, "t"), [1, 1, 1], "ignored while the run is running");
  const sim = await simulate(d);
  const event = clear("t", [2], false);
  evolve(sim.state, event);
  assert.deepEqual(workFor(sim.state, event).map((w) => [w.mapIndex, w.try]), [[2, 2]]);
});

test("params: defaults fill in; an undeclared key or a value of another type is refused before the run", () => {
  const d = dag({ id: "p", params: { count: 3, tags: ["a"], anything: null } }, () => {
    task("t", () => 1)({});
  });
  assert.deepEqual(confFor(d.spec, { count: 5 }), { count: 5, tags: ["a"], anything: null });
  assert.deepEqual(confFor(d.spec, { anything: { x: 1 } }).anything, { x: 1 });
  assert.throws(() => confFor(d.spec, { cuont: 5 }), (e: unknown) => e instanceof BadInputError && /key 'cuont' is not a param of DAG 'p' \(it declares: count, tags, anything\)/.test(e.message));
  assert.throws(() => confFor(d.spec, { count: "5" }), /key 'count' of DAG 'p' must be a number \(its default is 3\), got a string/);
  assert.throws(() => confFor(d.spec, { tags: "a" }), /must be a list/);
  const open = dag({ id: "open" }, () => task("t", () => 1)({}));
  assert.deepEqual(confFor(open.spec, { any: 1 }), { any: 1 }, "a DAG without params takes any conf");
});

test("a cleared run's timeout counts from the clear, not from the first start", async () => {
  const d = dag({ id: "t2", runTimeoutMs: 1000 }, () => {
    task("t", () => 1)({});
  });
  const sim = await simulate(d);
  const event = clear("t", null, false, 50_000);
  evolve(sim.state, event);
  assert.deepEqual(decide(sim.state, 50_001).map((e) => e.type), ["TaskScheduled"]);
});

test("removed instances are not re-run by a clear; a clear that requeues nothing finishes at once", async () => {
  let calls = 0;
  const d = dag({ id: "rm" }, () => {
    const list = task("list", () => (++calls === 1 ? [1, 2, 3] : [1]))({});
    task("each", ({ v }: { v: number }) => v).expand({ v: list });
  });
  const sim = await simulate(d);
  await operate(d, sim, clear("list", null, true));
  await operate(d, sim, clear("each", [2], false, 2000));
  assert.deepEqual(runReport(sim.state).tasks.each!.instances.map((i) => [i.state, i.tries]), [["success", 2], ["removed", 1], ["removed", 1]]);
  assert.equal(sim.state.state, "success");
});

test("clearing a failed upstream instance with downstream re-runs the whole downstream map (its items shift)", async () => {
  let attempt = 0;
  const d = dag({ id: "shift" }, () => {
    const a = task("a", ({ v }: { v: number }) => {
      if (v === 2 && attempt++ === 0) throw new Error("first time");
      return v;
    }).expand({ v: [0, 1, 2, 3] });
    task("b", ({ v }: { v: number }) => v * 10, { triggerRule: "all_done" }).expand({ v: a });
  });
  const sim = await simulate(d);
  assert.deepEqual(resultsOf(sim.state, "b"), [0, 10, 30]);
  await operate(d, sim, clear("a", [2], true));
  assert.deepEqual(resultsOf(sim.state, "b"), [0, 10, 20, 30]);
});

test("work for InstancesQueued covers only the instances the fold queued", () => {
  const d = dag({ id: "q" }, () => {
    task("t", ({ v }: { v: number }) => v, { maxActivePerRun: 1 }).expand({ v: [0, 1] });
  });
  const state = running(d);
  const [queued] = decide(state, 3);
  assert.equal(queued!.type, "InstancesQueued");
  evolve(state, { type: "InstanceMarked", runId: "R", taskId: "t", mapIndex: 0, state: "success", at: 4 });
  evolve(state, queued!);
  assert.deepEqual(workFor(state, queued!), []);
});

test("a cleared upstream that now returns an object giving a partial() argument fails the downstream on its rerun, not leaving it queued", async () => {
  let tries1 = 0;
  const d = dag({ id: "kwrerun" }, () => {
    const made = task("made", ({ i }: { i: number }) => (i === 1 && ++tries1 > 1 ? { x: i, y: 5 } : { x: i })).expand({ i: [0, 1] });
    task("add", ({ x, y }: { x: number; y: number }) => x + y).partial({ y: 10 }).expandKwargs(made);
  });
  const sim = await simulate(d);
  assert.deepEqual(resultsOf(sim.state, "add"), [10, 11]);
  await operate(d, sim, clear("made", [1], true));
  const add = sim.state.tasks.add!;
  assert.equal(add.state, "failed");
  assert.equal(add.error!.message, "task 'add': expandKwargs item 1 sets 'y', which partial() already gives; give each argument in one place");
  assert.equal(sim.state.state, "failed");
});

test("work for instances already expanded is built without checking their items again: a run expanded before the check carries on", async () => {
  const d = dag({ id: "kwbefore" }, () => {
    const pairs = task("pairs", () => [{ x: 1 }, { x: 2 }])({});
    task("add", ({ x, y }: { x: number; y: number }) => x + y).partial({ y: 10 }).expandKwargs(pairs);
  });
  const sim = await simulate(d);
  // What a run expanded under the old rule (the object's value won) may hold.
  (sim.state.tasks.pairs!.instances![0] as { result: unknown }).result = [{ x: 1 }, { x: 2, y: 5 }];
  await operate(d, sim, clear("add", [1], false));
  assert.deepEqual(tries(sim.state, "add"), [1, 2]);
  assert.deepEqual(resultsOf(sim.state, "add"), [11, 7]);
  assert.equal(sim.state.state, "success");
});
