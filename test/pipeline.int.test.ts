// The whole pipeline on a real nats-server: coordinator, worker, projector, log and read model.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { JetStreamApiError } from "@nats-io/jetstream";
import { loadDags, pickDag, type DagBag } from "../libs/dags/index.ts";
import { fold, runReport, StoredValue, type RunState } from "../libs/core/index.ts";
import { appendEvent, fetchValue, followEvents, hasOutcome, valueStore } from "../libs/nats/index.ts";
import { finishedInstance, isRunEvent, outcomesOf, OUTCOME_CHUNK, type InstanceSucceeded, type RunEvent } from "../libs/events/index.ts";
import { msgIds, STREAMS, subjects } from "../libs/names/index.ts";
import { createLogger } from "../libs/log/index.ts";
import { startStack, type Stack } from "../services/stack/index.ts";
import { requestRun, waitForRun } from "../services/cli/runs.ts";
import { cancelRun, clearRun, markInstance } from "../services/cli/operate.ts";
import { ACCEPTANCE, FIXTURE_DAGS, FIXTURES, tempDir } from "./helpers/index.ts";
import { dumpTables, replayed } from "./helpers/replay.ts";
import { VALUES } from "./fixtures/dags/shell_env.ts";

const dir = tempDir();
const MB = 1024 * 1024;
let stack: Stack;
let bag: DagBag;
const log = createLogger("test", "warn");

before(async () => {
  const acceptance = await loadDags(ACCEPTANCE);
  const fixtures = await loadDags(FIXTURE_DAGS);
  const operate = await loadDags(join(FIXTURES, "operate"));
  bag = { dir: FIXTURE_DAGS, dags: new Map([...acceptance.dags, ...fixtures.dags, ...operate.dags]), errors: [] };
  stack = await startStack({ dataDir: dir.path, bag, log, worker: { startedEventAfterMs: 50 }, maxValueBytes: 8 * MB });
});

after(async () => {
  await stack?.stop();
  dir.remove();
});

async function run(dagId: string, conf: Record<string, unknown> = {}): Promise<RunState> {
  const { version, dag } = pickDag(bag, dagId);
  const runId = await requestRun(stack.nats, { dagId, version, spec: dag.spec, conf });
  return waitForRun(stack.nats, runId);
}

/** A run's events; an InstancesFinished as the outcomes it stands for, each at its sequence. */
async function runEvents(runId: string) {
  const follow = await followEvents(stack.nats.js, subjects.run(runId));
  const events = [];
  for await (const e of follow) {
    if (e.event?.type === "InstancesFinished") for (const event of outcomesOf(e.event)) events.push({ ...e, event });
    else if (e.event) events.push({ ...e, event: e.event });
    if (e.caughtUp) break;
  }
  await follow.stop();
  return events;
}

function dump(db: import("better-sqlite3").Database, runId: string) {
  return {
    run: db.prepare("SELECT dag_id, state, started_at, ended_at FROM dag_runs WHERE run_id = ?").get(runId),
    tasks: db.prepare("SELECT * FROM tasks WHERE run_id = ? ORDER BY task_id").all(runId),
    instances: db.prepare("SELECT * FROM task_instances WHERE run_id = ? ORDER BY task_id, map_index").all(runId),
  };
}

test("the seed DAG gives add [6] = [7, 12, 9, 14, 13, 18] and a reduce that receives that list", async () => {
  const state = await run("sample_repeated_mapping");
  const report = runReport(state);
  assert.equal(report.state, "success");
  assert.deepEqual(report.tasks.add!.instances.map((i) => i.result), [7, 12, 9, 14, 13, 18]);
  assert.deepEqual(report.tasks.print_x!.instances.map((i) => [i.mapIndex, i.result]), [[-1, [7, 12, 9, 14, 13, 18]]]);

  const events = await runEvents(state.runId);
  const types = events.map((e) => e.event.type);
  assert.equal(types.filter((t) => t === "TaskExpanded").length, 1, "one expansion event for six instances");
  assert.equal(types.filter((t) => t === "InstanceSucceeded").length, 7, "exactly one result per instance");
  assert.equal(types.filter((t) => t === "RunFinished").length, 1);
});

test("the read model holds every instance, and equals a fresh rebuild from the log", async () => {
  const state = await run("upstream_list");
  const last = (await runEvents(state.runId)).at(-1)!.seq;
  await stack.projector.waitFor(last);
  const live = dump(stack.projector.model.db, state.runId);
  assert.deepEqual(live.run, { dag_id: "upstream_list", state: "success", started_at: state.startedAt, ended_at: state.endedAt });
  const load = (live.instances as { task_id: string; map_index: number; result: string; state: string }[]).filter((r) => r.task_id === "load");
  assert.deepEqual(load.map((r) => [r.map_index, r.state, JSON.parse(r.result)]), [
    [0, "success", { file: "a.csv", rows: 1 }], [1, "success", { file: "b.csv", rows: 2 }],
    [2, "success", { file: "c.csv", rows: 3 }], [3, "success", { file: "d.csv", rows: 4 }],
  ]);

  assert.deepEqual(await replayed(stack.nats, last, (db) => dump(db, state.runId)), live);
});

test("a failing instance fails its task; the reduce is upstream_failed; the run fails with the error kept", async () => {
  const report = runReport(await run("failing"));
  assert.equal(report.state, "failed");
  assert.equal(report.tasks.check!.state, "failed");
  assert.deepEqual(report.tasks.check!.instances.map((i) => i.state), ["success", "failed", "success"]);
  assert.match(report.tasks.check!.instances[1]!.error!, /n=2 is not allowed/);
  assert.equal(report.tasks.total!.state, "upstream_failed");
});

test("a task with retries runs again and succeeds on its second try", async () => {
  const report = runReport(await run("retry"));
  assert.equal(report.state, "success");
  assert.deepEqual(report.tasks.flaky!.instances.map((i) => [i.tries, i.result]), [[2, "ok on try 2"]]);
});

test("a NonRetryableError fails its instance at once, whatever its retries; another error in the same task is retried", async () => {
  const report = runReport(await run("no_retry"));
  assert.equal(report.state, "failed");
  assert.deepEqual(report.tasks.load!.instances.map((i) => [i.state, i.tries]), [["failed", 1], ["success", 2]]);
  assert.match(report.tasks.load!.instances[0]!.error!, /missing\.csv does not exist/);
});

test("mapped shell values arrive as environment variables and cannot change the command", async () => {
  const report = runReport(await run("shell_env"));
  assert.equal(report.state, "success");
  assert.deepEqual(report.tasks.echo_value!.instances.map((i) => i.result), VALUES);
});

test("the run's conf reaches the task context", async () => {
  const report = runReport(await run("conf_echo", { n: 3, name: "x" }));
  assert.deepEqual(report.tasks.echo!.instances[0]!.result, { n: 3, name: "x" });
});

test("the fence refuses a coordinator append from a stale view, and a repeated result id is dropped", async () => {
  const state = await run("partial_expand");
  const stale = appendEvent(stack.nats, { type: "RunFinished", runId: state.runId, state: "failed", at: 1 }, { expectLastSubjectSeq: 1 });
  await assert.rejects(stale, (err: unknown) => err instanceof JetStreamApiError && err.code === 10071);

  // A try's outcome appended alone carries the try's id (a worker does so for a redelivered try), so a second copy inside the duplicate window is dropped;
  // one that gets in anyway (outside the window, or in another worker's InstancesFinished) is ignored by the fold.
  const copy = { type: "InstanceSucceeded", runId: state.runId, taskId: "add", mapIndex: 0, try: 1, result: 999, worker: "x", startedAt: 1, at: 2 } as const;
  const id = msgIds.instance(state.runId, "add", 0, 1);
  await appendEvent(stack.nats, copy, { msgId: id });
  const ack = await appendEvent(stack.nats, copy, { msgId: id });
  assert.equal(ack.duplicate, true, "same instance and try: JetStream drops it inside the duplicate window");
  const events = (await runEvents(state.runId)).map((e) => e.event);
  assert.ok(events.filter((e) => e.type === "InstanceSucceeded" && e.taskId === "add").length <= 4, "the repeat was not appended");
  assert.deepEqual(fold(events.filter((e) => isRunEvent(e)) as RunEvent[])!.tasks.add!.instances!.map((i) => i.result), state.tasks.add!.instances!.map((i) => i.result), "the fold kept the first result of each try");
});

test("a message in the log that is not a valid event is skipped, and runs carry on", async () => {
  await stack.nats.js.publish(subjects.coordinator("01BADBADBADBADBADBADBADBAD"), new Uint8Array([0xc1, 0x00]));
  const report = runReport(await run("partial_expand"));
  assert.equal(report.state, "success");
  assert.deepEqual(report.tasks.total!.instances[0]!.result, 36);
});

test("a malformed message as the newest event of a run's coordinator subject does not wedge the fence", async () => {
  const { version, dag } = pickDag(bag, "slow_fanout");
  const runId = await requestRun(stack.nats, { dagId: "slow_fanout", version, spec: dag.spec, conf: {} });
  // wait for the expansion, then drop garbage on the coordinator subject before the reduce is decided
  const follow = await followEvents(stack.nats.js, subjects.coordinator(runId));
  for await (const e of follow) if (e.event?.type === "TaskExpanded") break;
  await follow.stop();
  await stack.nats.js.publish(subjects.coordinator(runId), new Uint8Array([0xc1]));
  const state = await waitForRun(stack.nats, runId);
  assert.equal(state.state, "success");
  assert.equal(state.tasks.count!.instances![0]!.result, 24);
});

test("a result over 1 MB is stored by reference; one over the hard limit fails its own instance, saying the size and the limit", async () => {
  const state = await run("oversized");
  const report = runReport(state);
  assert.equal(report.state, "failed");
  assert.deepEqual(report.tasks.big!.instances.map((i) => i.state), ["success", "success", "failed"]);
  assert.equal(state.tasks.big!.instances![0]!.result, "x".repeat(10));
  const stored = state.tasks.big!.instances![1]!.result;
  assert.ok(stored instanceof StoredValue, "the 2 MB result is a reference in the log");
  assert.equal(await fetchValue(await valueStore(stack.nats), stored), "x".repeat(2 * MB));
  assert.match(report.tasks.big!.instances[2]!.error!, /returned 943718\d bytes, over the 8388608-byte limit for a result \(MAPFLOW_MAX_VALUE_BYTES\); write large data elsewhere/);
});

test("maxActivePerRun and maxActive hold instances back (scheduled) and let them go as slots free, across runs", async () => {
  const [a, b] = await Promise.all([run("limits"), run("limits")]);
  for (const state of [a, b]) {
    const report = runReport(state);
    assert.equal(report.state, "success");
    const peak = (id: string) => Math.max(...report.tasks[id]!.instances.map((i) => i.result as number));
    assert.ok(peak("per_run") <= 2, `maxActivePerRun 2, saw ${peak("per_run")} at once`);
    assert.ok(peak("free") > 2, `without a limit the same instances overlap (saw ${peak("free")}), so the check above can fail`);
  }
  const globalPeak = Math.max(...[a, b].flatMap((s) => runReport(s).tasks.global!.instances.map((i) => i.result as number)));
  assert.ok(globalPeak <= 3, `maxActive 3 across two runs, saw ${globalPeak} at once`);
  const events = (await runEvents(a.runId)).map((e) => e.event);
  const queued = events.filter((e) => e.type === "InstancesQueued" && e.taskId === "per_run");
  assert.ok(queued.length >= 3, "the six held instances went out in several InstancesQueued events");
  assert.ok(events.some((e) => e.type === "InstanceStarted"), "tries running longer than startedEventAfterMs are recorded as running");
});

test("a run waiting for a maxActive slot goes on when the run holding it is cancelled", async () => {
  const holder = pickDag(bag, "hold_slot");
  const request = (ms: number) => requestRun(stack.nats, { dagId: "hold_slot", version: holder.version, spec: holder.dag.spec, conf: { ms } });
  const a = await request(60_000);
  await new Promise((r) => setTimeout(r, 500));
  const b = await request(10);
  await new Promise((r) => setTimeout(r, 500));
  await cancelRun(stack.nats, a);
  const [stateA, stateB] = await Promise.all([waitForRun(stack.nats, a), waitForRun(stack.nats, b)]);
  assert.equal(stateA.state, "cancelled");
  assert.equal(stateB.state, "success");
});

test("after clears (with removed instances), marks and cancels, the read model still equals a rebuild from the log", async () => {
  const shrunk = await run("shrink");
  const seq = await clearRun(stack.nats, shrunk.runId, "list", null, true);
  const again = await waitForRun(stack.nats, shrunk.runId, undefined, seq);
  assert.deepEqual(again.tasks.each!.instances!.map((i) => i.state), ["success", "success", "removed", "removed"]);
  await markInstance(stack.nats, shrunk.runId, "each", 0, "failed");

  const last = (await stack.nats.jsm.streams.info(STREAMS.events)).state.last_seq;
  await stack.projector.waitFor(last);
  const live = dumpTables(stack.projector.model.db);
  const removed = (live.instances as { run_id: string; task_id: string; state: string }[]).filter((r) => r.run_id === shrunk.runId && r.task_id === "each");
  assert.deepEqual(removed.map((r) => r.state), ["failed", "success", "removed", "removed"]);
  assert.deepEqual(await replayed(stack.nats, last, dumpTables), live);
});

test("large values travel by reference: a reduce and a mapped task get them; inputs over the hard limit fail their instance with the size and the limit", async () => {
  const report = runReport(await run("big_inputs"));
  assert.equal(report.state, "failed");
  assert.equal(report.tasks.join!.instances[0]!.result, 9 * MB, "the reduce got the three stored 3 MB results");
  assert.deepEqual(report.tasks.each!.instances.map((i) => i.result), [2 * MB, 5 * MB], "each item of a stored list, sent through the object store");
  const pair = report.tasks.pair!.instances;
  assert.deepEqual(pair.map((i) => [i.state, i.tries]), [["success", 1], ["failed", 1]], "inputs too large fail without a retry, which would send the same inputs");
  assert.equal(pair[0]!.result, 3 * MB);
  assert.match(pair[1]!.error!, /the inputs of task 'pair' map index 1 are 94\d{5} bytes, over the 8388608-byte limit for a work item \(MAPFLOW_MAX_VALUE_BYTES\); pass large data by reference/);
});

test("a redelivered try finds its outcome in the log: alone on its instance's subject, or inside one of its chunk's InstancesFinished", async () => {
  const runId = "01OUTCOMESCHUNK00000000000";
  const ok = (mapIndex: number, tryNumber = 1): InstanceSucceeded => ({
    type: "InstanceSucceeded", runId, taskId: "grp.each", mapIndex, try: tryNumber, worker: "w", startedAt: 1, at: 2, result: mapIndex,
  });
  const batch = (...outcomes: InstanceSucceeded[]) =>
    appendEvent(stack.nats, { type: "InstancesFinished", runId, taskId: "grp.each", worker: "w", outcomes: outcomes.map(finishedInstance), at: 3 });
  await batch(ok(0), ok(1));
  await batch(ok(2), ok(3, 2));
  await batch(ok(OUTCOME_CHUNK), ok(OUTCOME_CHUNK + 1));
  await appendEvent(stack.nats, ok(5));
  const has = (mapIndex: number, tryNumber = 1) => hasOutcome(stack.nats, runId, "grp.each", mapIndex, tryNumber);
  assert.deepEqual(await Promise.all([has(0), has(1), has(2), has(3, 2), has(3, 1), has(OUTCOME_CHUNK + 1), has(5)]), [true, true, true, true, true, true, true]);
  assert.deepEqual(await Promise.all([has(3, 3), has(4), has(2, 2), has(OUTCOME_CHUNK + 2), has(6)]), [false, false, false, false, false], "no outcome of these tries anywhere");
});
