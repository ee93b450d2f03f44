// maxActivePerRun / maxActive and the scheduled → queued → running states, on the pure core.
import { test } from "node:test";
import assert from "node:assert/strict";
import { dag, task } from "../libs/sdk/index.ts";
import { decide, evolve, fold, workFor, type RunState } from "../libs/core/index.ts";
import type { CoordinatorEvent, RunEvent } from "../libs/events/index.ts";
import { simulate } from "./helpers/simulate.ts";

function started(d: ReturnType<typeof dag>): RunState {
  return fold([{ type: "RunRequested", runId: "R", dagId: d.spec.id, dagVersion: "v", spec: d.spec, conf: {}, at: 1 }])!;
}

function step(state: RunState, settings?: Parameters<typeof decide>[2]): CoordinatorEvent[] {
  const events = decide(state, 5, settings);
  for (const e of events) evolve(state, e);
  return events;
}

const ok = (mapIndex: number, tryNumber = 1): RunEvent =>
  ({ type: "InstanceSucceeded", runId: "R", taskId: "t", mapIndex, try: tryNumber, result: mapIndex, worker: "w", startedAt: 2, at: 3 });

test("maxActivePerRun: instances wait as scheduled and go out lowest index first as slots free", () => {
  const d = dag({ id: "lim" }, () => {
    task("t", ({ v }: { v: number }) => v, { maxActivePerRun: 2, retries: 1 }).expand({ v: [0, 1, 2, 3, 4] });
  });
  const state = started(d);
  const [expanded] = step(state);
  assert.equal(expanded!.type, "TaskExpanded");
  assert.deepEqual(workFor(state, expanded!), [], "held instances get no work yet");
  assert.deepEqual(state.tasks.t!.instances!.map((i) => i.state), Array(5).fill("scheduled"));
  const [first] = step(state);
  assert.deepEqual(first, { type: "InstancesQueued", runId: "R", taskId: "t", mapIndexes: [0, 1], at: 5 });
  assert.deepEqual(workFor(state, first!).map((w) => w.mapIndex), [0, 1]);
  assert.deepEqual(step(state), [], "no slot is free");
  evolve(state, ok(0));
  assert.deepEqual(step(state).map((e) => e.type === "InstancesQueued" && e.mapIndexes), [[2]]);
  evolve(state, { type: "InstanceFailed", runId: "R", taskId: "t", mapIndex: 1, try: 1, error: { name: "E", message: "x" }, worker: "w", startedAt: 2, at: 3 });
  const [retried, more] = step(state);
  assert.equal(retried!.type, "InstanceRetried");
  assert.deepEqual(workFor(state, retried!), [], "a retry under a limit waits for a slot too");
  assert.deepEqual(more && more.type === "InstancesQueued" && more.mapIndexes, [3], "the failed try gave its slot up");
  assert.equal(state.tasks.t!.instances![1]!.state, "scheduled");
});

test("maxActive counts the task's instances across runs, as the coordinator reports them", () => {
  const d = dag({ id: "glob" }, () => {
    task("t", ({ v }: { v: number }) => v, { maxActive: 3 }).expand({ v: [0, 1, 2, 3] });
  });
  const state = started(d);
  step(state);
  assert.deepEqual(step(state, { maxMapLength: 10, activeAcrossRuns: () => 3 }), [], "other runs hold every slot");
  const [queued] = step(state, { maxMapLength: 10, activeAcrossRuns: () => 1 });
  assert.deepEqual(queued && queued.type === "InstancesQueued" && queued.mapIndexes, [0, 1]);
});

test("a limited DAG runs to success in memory, never with more out than the limit", async () => {
  const d = dag({ id: "sim" }, () => {
    task("t", ({ v }: { v: number }) => v, { maxActivePerRun: 3 }).expand({ v: Array.from({ length: 10 }, (_, i) => i) });
  });
  const { state, events } = await simulate(d);
  assert.equal(state.state, "success");
  const batches = events.filter((e) => e.type === "InstancesQueued").map((e) => (e as { mapIndexes: readonly number[] }).mapIndexes.length);
  assert.ok(batches.every((n) => n <= 3), `batches ${batches.join(",")}`);
  assert.equal(batches.reduce((a, b) => a + b, 0), 10);
});

test("InstanceStarted marks a queued try running; its outcome still lands; a stale start changes nothing", () => {
  const d = dag({ id: "run" }, () => {
    task("t", ({ v }: { v: number }) => v).expand({ v: [0, 1] });
  });
  const state = started(d);
  step(state);
  const start = (mapIndex: number, tryNumber: number): RunEvent =>
    ({ type: "InstanceStarted", runId: "R", taskId: "t", mapIndex, try: tryNumber, worker: "w1", startedAt: 2, at: 4 });
  evolve(state, start(0, 1));
  evolve(state, start(1, 2));
  assert.deepEqual(state.tasks.t!.instances!.map((i) => i.state), ["running", "queued"]);
  evolve(state, ok(0));
  evolve(state, start(0, 1));
  assert.equal(state.tasks.t!.instances![0]!.state, "success");
});
