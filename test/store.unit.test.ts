// The read model's task rows keep their counts by state from the instance rows each commit writes
// (libs/store/tally.ts): after every commit they must agree with the instance rows themselves.
import { test } from "node:test";
import assert from "node:assert/strict";
import { dag, task } from "../libs/sdk/index.ts";
import type { RunEvent } from "../libs/events/index.ts";
import { fold as foldEvents } from "../libs/core/index.ts";
import { ReadModel } from "../libs/store/index.ts";
import { ProjectionFold } from "../services/projector/fold.ts";
import { operate, simulate } from "./helpers/simulate.ts";
import { dumpTables } from "./helpers/replay.ts";

type Counts = Record<string, Record<string, number>>;

function countsInRows(model: ReadModel): { tasks: Counts; instances: Counts } {
  const tasks: Counts = {};
  for (const row of model.db.prepare("SELECT task_id, counts FROM tasks").all() as { task_id: string; counts: string }[]) {
    tasks[row.task_id] = JSON.parse(row.counts) as Record<string, number>;
  }
  const instances: Counts = Object.fromEntries(Object.keys(tasks).map((id) => [id, {}]));
  for (const row of model.db.prepare("SELECT task_id, state, count(*) AS n FROM task_instances GROUP BY task_id, state").all() as { task_id: string; state: string; n: number }[]) {
    instances[row.task_id]![row.state] = row.n;
  }
  return { tasks, instances };
}

/**
 * Folds `events` as the live projector does (a finished run is dropped, and folded again from its
 * earlier events when an operator reopens it), committing every `every` events and calling `check`
 * after each commit with the number of events folded. Returns the read model, for the caller to close.
 */
function foldCommitting(events: readonly RunEvent[], every: number, check: (model: ReadModel, folded: number, last: RunEvent) => void): ReadModel {
  const model = new ReadModel(":memory:");
  const fold = new ProjectionFold(model);
  try {
    events.forEach((event, n) => {
      fold.apply(n + 1, event, fold.needsHistory(event) ? foldEvents(events.slice(0, n)) : undefined);
      if ((n + 1) % every !== 0 && n + 1 !== events.length) return;
      fold.commit();
      check(model, n + 1, event);
    });
    return model;
  } catch (err) {
    model.close();
    throw err;
  }
}

/** Checks each task's counts against its rows after each commit. */
function foldChecking(events: readonly RunEvent[], every: number): { commits: number; final: Counts } {
  let commits = 0;
  const model = foldCommitting(events, every, (m, folded, last) => {
    commits++;
    const { tasks, instances } = countsInRows(m);
    assert.deepEqual(tasks, instances, `after event ${folded} (${last.type}), committing every ${every}`);
  });
  try {
    return { commits, final: countsInRows(model).tasks };
  } finally {
    model.close();
  }
}

/** A run of the `tally` DAG that holds instances back, retries, fails, is marked and is cleared shorter. */
async function tallyRun(): Promise<RunEvent[]> {
  let lists = 0;
  const d = dag({ id: "tally" }, () => {
    const list = task("list", () => (++lists === 1 ? [0, 1, 2, 3, 4, 5] : [0, 1, 2]))({});
    const each = task("each", ({ v }: { v: number }) => v * 10, { maxActivePerRun: 2, retries: 1 }).expand({ v: list });
    task("sum", ({ xs }: { xs: number[] }) => xs.reduce((a, b) => a + b, 0))({ xs: each });
  });
  // Instance 1 fails its first try and is retried; instance 4 fails both and fails the task.
  const sim = await simulate(d, { fail: (item) => item.taskId === "each" && ((item.mapIndex === 1 && item.try === 1) || item.mapIndex === 4) });
  assert.equal(sim.state.state, "failed");
  await operate(d, sim, { type: "InstanceMarked", runId: "R", taskId: "each", mapIndex: 4, state: "success", at: 10_000 });
  // A clear of the list with its downstream: `each` expands again shorter, and its surplus is removed.
  await operate(d, sim, { type: "ClearRequested", runId: "R", taskId: "list", mapIndexes: null, downstream: true, at: 20_000 });
  assert.equal(sim.state.state, "success");
  const types = new Set(sim.events.map((e) => e.type));
  for (const type of ["InstancesQueued", "InstanceRetried", "InstanceMarked", "ClearRequested"]) assert.ok(types.has(type as RunEvent["type"]), `the log has ${type}`);
  return sim.events;
}

test("a task's counts by state agree with its instance rows after every commit: held back, retried, cleared shorter, marked", async () => {
  const events = await tallyRun();
  const eachEvent = foldChecking(events, 1);
  assert.ok(eachEvent.commits > 30);
  assert.deepEqual(eachEvent.final["each"], { success: 3, removed: 3 });
  // Batched differently, the end is the same.
  for (const every of [2, 3, 7, events.length]) assert.deepEqual(foldChecking(events, every).final, eachEvent.final);
});

/** The rows a replay writes for `events` in one commit. */
function replayRows(events: readonly RunEvent[]) {
  const model = new ReadModel(":memory:");
  try {
    const once = new ProjectionFold(model, { keepFinished: true });
    events.forEach((e, n) => once.apply(n + 1, e));
    once.commit();
    return dumpTables(model.db);
  } finally {
    model.close();
  }
}

/** Folds `events` committing after each, as a live projector that is never behind, and checks every commit's rows against a replay of the events so far. */
function assertEachCommitIsAReplay(events: readonly RunEvent[]): ReadModel {
  return foldCommitting(events, 1, (live, folded, last) =>
    assert.deepEqual(dumpTables(live.db), replayRows(events.slice(0, folded)), `after event ${folded} (${last.type})`));
}

const runState = (model: ReadModel) => (model.db.prepare("SELECT state FROM dag_runs").get() as { state: string }).state;

test("the rows after each commit are the rows a replay of the same events writes in one: a queued run's row starts running", async () => {
  const model = assertEachCommitIsAReplay(await tallyRun());
  assert.equal(runState(model), "success");
  model.close();
});

test("the same holds for a run cancelled or timed out with instances unfinished, and an outcome after it", async () => {
  const events = await tallyRun();
  const firstRunning = events.findIndex((e) => e.type === "InstanceSucceeded" && e.taskId === "list") + 3;
  assert.ok(foldEvents(events.slice(0, firstRunning))!.tasks["each"]!.open > 0, "the run is cut with instances unfinished");
  const late = events.slice(firstRunning).find((e) => e.type === "InstanceSucceeded" || e.type === "InstanceFailed")!;
  const ends: [RunEvent[], string][] = [
    [[{ type: "RunCancelRequested", runId: "R", at: 5_000 }, { type: "RunFinished", runId: "R", state: "cancelled", at: 5_001 }], "cancelled"],
    [[{ type: "RunTimedOut", runId: "R", error: { name: "RunTimeout", message: "the run took longer than 1s" }, at: 5_000 }, { type: "RunFinished", runId: "R", state: "failed", at: 5_001 }], "failed"],
  ];
  for (const [end, state] of ends) {
    const model = assertEachCommitIsAReplay([...events.slice(0, firstRunning), ...end, late]);
    assert.equal(runState(model), state);
    model.close();
  }
});
