// The log checks of `mapflow audit verify`, given / when / then: a log folded through evolve and LogAudit.
import { test } from "node:test";
import assert from "node:assert/strict";
import { LogAudit, type RunState } from "../libs/core/index.ts";
import { driveRun } from "./helpers/drive.ts";
import type { RunEvent } from "../libs/events/index.ts";
import type { DagSpec, TaskSpec, ValueSource } from "../libs/core/spec.ts";
import { DEFAULT_TASK_OPTIONS } from "../libs/core/spec.ts";

const lit = (value: unknown): ValueSource => ({ kind: "literal", value });
const task = (id: string, part: Partial<TaskSpec> = {}): TaskSpec => ({
  id, operator: "function", args: {}, mapping: null, group: null, upstream: [], options: DEFAULT_TASK_OPTIONS, ...part,
});
const spec: DagSpec = {
  id: "d", description: null, startDate: null, catchup: false, runTimeoutMs: null, params: null, groups: [],
  tasks: [task("add", { mapping: { kind: "product", kwargs: { x: lit([1, 2, 3]) } } })],
};

const ok = (mapIndex: number, tryNumber = 1): RunEvent => ({
  type: "InstanceSucceeded", runId: "R", taskId: "add", mapIndex, try: tryNumber, result: mapIndex, worker: "w", startedAt: 5, at: 6,
});

/** Folds `events` after the run's request and the coordinator's own decisions (the expansion: add [3]), auditing each; returns the findings. */
function audit(...events: RunEvent[]): { findings: LogAudit["findings"]; state: RunState } {
  const checker = new LogAudit();
  let seq = 0;
  const state = driveRun(spec, events, (event, before) => checker.check(++seq, before, event));
  return { findings: checker.findings, state };
}

test("a clean run: every result belongs to a dispatched try, one terminal event", () => {
  const { findings, state } = audit(ok(0), ok(1), ok(2));
  assert.equal(state.state, "success");
  assert.deepEqual(findings, []);
});

test("a result for a map index the expansion never made is found", () => {
  const { findings } = audit(ok(0), ok(7));
  assert.equal(findings.length, 1);
  assert.deepEqual({ ...findings[0], seq: undefined }, { seq: undefined, runId: "R", taskId: "add", mapIndex: 7, try: 1, problem: "a result for an instance that was never dispatched" });
});

test("a result for a try that was never dispatched is found", () => {
  const { findings } = audit(ok(0, 2));
  assert.match(findings[0]!.problem, /try 2, but only tries up to 1 were dispatched/);
});

test("two results for one try are found, even though the fold keeps the first", () => {
  const { findings } = audit(ok(0), ok(0));
  assert.deepEqual(findings.map((f) => [f.mapIndex, f.problem]), [[0, "a second result for the same try"]]);
});

test("a second terminal event is found; a clear between two is not", () => {
  const finished: RunEvent = { type: "RunFinished", runId: "R", state: "success", at: 20 };
  assert.deepEqual(audit(ok(0), ok(1), ok(2), finished).findings.map((f) => f.problem), ["a second terminal event with no clear between"]);
  const clear: RunEvent = { type: "ClearRequested", runId: "R", taskId: "add", mapIndexes: [1], downstream: false, at: 30 };
  assert.deepEqual(audit(ok(0), ok(1), ok(2), clear, ok(1, 2)).findings, []);
});

test("a result for a run the log never requested is found", () => {
  const checker = new LogAudit();
  checker.check(9, undefined, { ...ok(0), runId: "GHOST" } as RunEvent);
  assert.deepEqual(checker.findings.map((f) => [f.seq, f.runId, f.problem]), [[9, "GHOST", "a result for a run the log never requested"]]);
});
