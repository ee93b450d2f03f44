// The pure core, given / when / then: no server, no clock.
import { test } from "node:test";
import assert from "node:assert/strict";
import { decide, evolve, fold, resolveExpansion, StoredValue, workFor, pendingWork, type RunState } from "../libs/core/index.ts";
import type { CoordinatorEvent, RunEvent } from "../libs/events/index.ts";
import type { DagSpec, TaskSpec, ValueSource } from "../libs/core/spec.ts";
import { DEFAULT_TASK_OPTIONS } from "../libs/core/spec.ts";

const lit = (value: unknown): ValueSource => ({ kind: "literal", value });
const out = (task: string): ValueSource => ({ kind: "output", task });

/** A task spec; `expand` is shorthand for a cross-product mapping. */
function t(id: string, part: Partial<TaskSpec> & { expand?: Record<string, ValueSource> } = {}): TaskSpec {
  const { expand, ...rest } = part;
  return {
    id, operator: "function", args: {}, mapping: expand ? { kind: "product", kwargs: expand } : null, group: null,
    upstream: [], options: DEFAULT_TASK_OPTIONS, ...rest,
  };
}

function spec(...tasks: TaskSpec[]): DagSpec {
  return { id: "d", description: null, startDate: null, catchup: false, runTimeoutMs: null, params: null, tasks, groups: [] };
}

function given(s: DagSpec, ...events: RunEvent[]): RunState {
  const requested: RunEvent = { type: "RunRequested", runId: "R", dagId: "d", dagVersion: "v1", spec: s, conf: {}, at: 1 };
  return fold([requested, ...events])!;
}

const ok = (taskId: string, mapIndex: number, result: unknown, tryNumber = 1): RunEvent => ({
  type: "InstanceSucceeded", runId: "R", taskId, mapIndex, try: tryNumber, result, worker: "w", startedAt: 5, at: 6,
});
const bad = (taskId: string, mapIndex: number, tryNumber = 1): RunEvent => ({
  type: "InstanceFailed", runId: "R", taskId, mapIndex, try: tryNumber, error: { name: "Error", message: "boom" }, worker: "w", startedAt: 5, at: 6,
});

/** Applies what decide returns, as the coordinator does after appending. */
function step(state: RunState, now = 10): CoordinatorEvent[] {
  const events = decide(state, now);
  for (const e of events) evolve(state, e);
  return events;
}

const seed = spec(
  t("add", { expand: { x: lit([2, 4, 8]), y: lit([5, 10]) } }),
  t("print_x", { args: { x: out("add") }, upstream: ["add"] }),
);

test("cross product: first kwarg outermost, in map-index order", () => {
  const state = given(seed);
  const expansion = resolveExpansion(state, seed.tasks[0]!);
  assert.equal(expansion.count, 6);
  const pairs = Array.from({ length: 6 }, (_, i) => expansion.input(i).args).map((a) => [a.x, a.y]);
  assert.deepEqual(pairs, [[2, 5], [2, 10], [4, 5], [4, 10], [8, 5], [8, 10]]);
});

test("an object maps one instance per [key, value] entry in insertion order", () => {
  const s = spec(t("m", { expand: { kv: lit({ b: 1, a: 2 }) } }));
  const expansion = resolveExpansion(given(s), s.tasks[0]!);
  assert.deepEqual([0, 1].map((i) => expansion.input(i).args.kv), [["b", 1], ["a", 2]]);
});

test("given a new run, decide expands the mapped task in one event with its count", () => {
  const state = given(seed);
  const events = decide(state, 10);
  assert.deepEqual(events, [{ type: "TaskExpanded", runId: "R", taskId: "add", count: 6, at: 10 }]);
  evolve(state, events[0]!);
  const work = workFor(state, events[0]!);
  assert.equal(work.length, 6);
  assert.deepEqual(work[3]!.args, { x: 4, y: 10 });
  assert.equal(state.tasks.add!.state, "running");
  assert.deepEqual(decide(state, 11), [], "nothing more to do until results arrive");
});

test("the reduce runs only when every instance is done, and receives results in map-index order", () => {
  const state = given(seed);
  step(state);
  // results arrive out of order
  for (const [i, r] of [[5, 18], [0, 7], [3, 14], [1, 12], [4, 13]] as const) evolve(state, ok("add", i, r));
  assert.deepEqual(decide(state, 12), [], "one instance still open");
  evolve(state, ok("add", 2, 9));
  assert.equal(state.tasks.add!.state, "success");
  const [scheduled] = step(state);
  assert.equal(scheduled!.type, "TaskScheduled");
  assert.deepEqual(workFor(state, scheduled!)[0]!.args, { x: [7, 12, 9, 14, 13, 18] });
  assert.equal(workFor(state, scheduled!)[0]!.mapIndex, -1);
});

test("a second result for a finished instance, or a result for another try, changes nothing", () => {
  const state = given(seed);
  step(state);
  evolve(state, ok("add", 0, 7));
  evolve(state, ok("add", 0, 999));
  evolve(state, ok("add", 1, 555, 2));
  assert.equal(state.tasks.add!.instances![0]!.result, 7);
  assert.equal(state.tasks.add!.instances![1]!.state, "queued");
  assert.equal(state.tasks.add!.open, 5);
});

test("the run finishes once every task is done; success when none failed", () => {
  const state = given(seed);
  step(state);
  [7, 12, 9, 14, 13, 18].forEach((r, i) => evolve(state, ok("add", i, r)));
  step(state);
  evolve(state, ok("print_x", -1, [7, 12, 9, 14, 13, 18]));
  const events = step(state, 20);
  assert.deepEqual(events, [{ type: "RunFinished", runId: "R", state: "success", at: 20 }]);
  assert.equal(state.state, "success");
  assert.equal(state.endedAt, 20);
  assert.deepEqual(decide(state, 21), [], "a finished run decides nothing");
});

const emptyMap = spec(
  t("nothing"),
  t("double", { expand: { x: out("nothing") }, upstream: ["nothing"] }),
  t("sum", { args: { xs: out("double") }, upstream: ["double"] }),
  t("cleanup", { upstream: ["sum"], options: { ...DEFAULT_TASK_OPTIONS, triggerRule: "all_done" } }),
);

test("an empty input skips the mapped task; all_success skips downstream, all_done runs, in one decision", () => {
  const state = given(emptyMap);
  step(state);
  evolve(state, ok("nothing", -1, []));
  const events = step(state);
  assert.deepEqual(events.map((e) => [e.type, "taskId" in e ? e.taskId : null]), [
    ["TaskExpanded", "double"],
    ["TaskSkipped", "sum"],
    ["TaskScheduled", "cleanup"],
  ]);
  assert.equal(state.tasks.double!.state, "skipped");
  assert.equal(state.tasks.sum!.state, "skipped");
  evolve(state, ok("cleanup", -1, "done"));
  assert.deepEqual(step(state).map((e) => e.type), ["RunFinished"]);
  assert.equal(state.state, "success");
});

test("a failed instance fails its task, marks downstream upstream_failed, and fails the run", () => {
  const state = given(seed);
  step(state);
  [0, 1, 2, 3, 4].forEach((i) => evolve(state, ok("add", i, i)));
  evolve(state, bad("add", 5));
  assert.equal(state.tasks.add!.state, "failed");
  const events = step(state);
  assert.deepEqual(events.map((e) => e.type), ["TaskSkipped", "RunFinished"]);
  assert.equal(state.tasks.print_x!.state, "upstream_failed");
  assert.equal(state.state, "failed");
});

test("retries: a failed try is retried with a later notBefore, then succeeds", () => {
  const s = spec(t("flaky", { options: { ...DEFAULT_TASK_OPTIONS, retries: 1, retryDelayMs: 500 } }));
  const state = given(s);
  step(state);
  evolve(state, bad("flaky", -1, 1));
  assert.equal(state.tasks.flaky!.instances![0]!.state, "up_for_retry");
  const [retry] = step(state, 100);
  assert.deepEqual(retry, { type: "InstanceRetried", runId: "R", taskId: "flaky", mapIndex: -1, try: 2, notBefore: 600, at: 100 });
  assert.equal(workFor(state, retry!)[0]!.try, 2);
  evolve(state, ok("flaky", -1, "fine", 2));
  assert.equal(state.tasks.flaky!.state, "success");
  assert.equal(state.tasks.flaky!.instances![0]!.try, 2);
});

test("an upstream output that is not a list or object fails the mapped task with a message naming task and type", () => {
  const s = spec(t("up"), t("m", { expand: { x: out("up") }, upstream: ["up"] }));
  const state = given(s);
  step(state);
  evolve(state, ok("up", -1, "a string"));
  const [failed] = step(state);
  assert.equal(failed!.type, "TaskFailed");
  assert.match((failed as { error: { message: string } }).error.message, /task 'm' cannot map over 'x': upstream task 'up' returned a string, but mapping needs a list/);
});

test("maxMapLength: an expansion over the limit fails with the length and the limit", () => {
  const s = spec(t("m", { expand: { x: lit([1, 2, 3]) }, options: { ...DEFAULT_TASK_OPTIONS, maxMapLength: 2 } }));
  const [failed] = decide(given(s), 1);
  assert.match(JSON.stringify(failed), /3 instances, over its maxMapLength of 2/);
});

test("mapped → mapped drops null results from the next expansion", () => {
  const s = spec(t("a", { expand: { x: lit([1, 2, 3]) } }), t("b", { expand: { y: out("a") }, upstream: ["a"] }));
  const state = given(s);
  step(state);
  evolve(state, ok("a", 0, 10));
  evolve(state, ok("a", 1, null));
  evolve(state, ok("a", 2, 30));
  const [expanded] = step(state);
  assert.deepEqual(expanded, { type: "TaskExpanded", runId: "R", taskId: "b", count: 2, at: 10 });
  assert.deepEqual(workFor(state, expanded!).map((w) => w.args.y), [10, 30]);
});

test("pendingWork lists every queued instance for a restarted coordinator", () => {
  const state = given(seed);
  step(state);
  evolve(state, ok("add", 1, 12));
  assert.deepEqual([...pendingWork(state)].map((w) => w.mapIndex), [0, 2, 3, 4, 5]);
});

test("a map of 100,000 instances folds to success", () => {
  const s = spec(t("w", { expand: { x: lit(Array.from({ length: 100_000 }, (_, i) => i)) } }));
  const state = given(s);
  step(state);
  for (let i = 0; i < 100_000; i++) evolve(state, ok("w", i, i));
  assert.equal(state.tasks.w!.state, "success");
});

test("a repeated failure of a try waiting for its retry changes nothing", () => {
  const s = spec(t("flaky", { options: { ...DEFAULT_TASK_OPTIONS, retries: 1 } }));
  const state = given(s);
  step(state);
  evolve(state, bad("flaky", -1, 1));
  evolve(state, bad("flaky", -1, 1));
  evolve(state, ok("flaky", -1, "late", 1));
  assert.equal(state.tasks.flaky!.retrying, 1);
  assert.equal(state.tasks.flaky!.instances![0]!.state, "up_for_retry");
});

test("an expansion of a task already skipped does not bring it back", () => {
  const state = given(emptyMap);
  evolve(state, { type: "TaskSkipped", runId: "R", taskId: "sum", state: "skipped", at: 2 });
  evolve(state, { type: "TaskScheduled", runId: "R", taskId: "sum", at: 3 });
  assert.equal(state.tasks.sum!.state, "skipped");
  assert.equal(state.tasks.sum!.instances, null);
});

test("expansion reads inside a stored result once attached; a stored result that is gone fails the mapped task, saying so", () => {
  const s = spec(t("list"), t("each", { expand: { x: out("list") }, upstream: ["list"] }));
  const attached = new StoredValue("results/R/list/-1/1/A", 3_000_000);
  attached.attach([1, 2, 3]);
  const state = given(s, { type: "TaskScheduled", runId: "R", taskId: "list", at: 2 }, ok("list", -1, attached));
  assert.deepEqual(decide(state, 10).map((e) => e.type === "TaskExpanded" && e.count), [3]);

  const gone = new StoredValue("results/R/list/-1/1/B", 3_000_000);
  gone.missing("the object store has no value 'results/R/list/-1/1/B'");
  const failed = decide(given(s, { type: "TaskScheduled", runId: "R", taskId: "list", at: 2 }, ok("list", -1, gone)), 10);
  assert.equal(failed[0]!.type, "TaskFailed");
  assert.match(failed[0]!.type === "TaskFailed" ? failed[0]!.error.message : "", /has no value 'results\/R\/list\/-1\/1\/B'/);
});

test("expandKwargs over results kept in the object store hands each reference to the worker to fetch and merge", () => {
  const s = spec(
    t("each", { expand: { x: lit([1, 2]) } }),
    t("m", { mapping: { kind: "kwargs", source: out("each") }, upstream: ["each"] }),
  );
  const big = new StoredValue("results/R/each/0/1/A", 2_000_000);
  const state = given(s, { type: "TaskExpanded", runId: "R", taskId: "each", count: 2, at: 2 }, ok("each", 0, big), ok("each", 1, { a: 1 }));
  const expansion = resolveExpansion(state, s.tasks[1]!);
  assert.equal(expansion.count, 2);
  assert.equal(expansion.input(0).spread, big, "not spread as {key, bytes}");
  assert.deepEqual(expansion.input(0).args, {});
  assert.deepEqual(expansion.input(1).args, { a: 1 });
});
