// Faults with real processes: workers killed (-9) or paused mid-task, a crash between append and ack,
// poison work, work that kills every worker, and the coordinator, projector and nats-server dying mid-run.
// Each test checks the run's end state, exactly one outcome per instance and try, and projection == replay.
import { test } from "node:test";
import assert from "node:assert/strict";
import { encodeWork } from "../libs/codec/index.ts";
import { KEYS, msgIds, STREAMS, subjects } from "../libs/names/index.ts";
import { appendEvent, configFor, freePort, startNatsServer } from "../libs/nats/index.ts";
import { fold, StoredValue, type WorkItem } from "../libs/core/index.ts";
import { loadDags, pickDag } from "../libs/dags/index.ts";
import { waitForRun } from "../services/cli/runs.ts";
import { ACCEPTANCE, cli, stopProcess, tempDir } from "./helpers/index.ts";
import { assertNextRunAndDecidedOnce, assertOnce, assertWideRun, executions, FAULT_DAGS, outcomeCounts, projectionAndReplay, rig, runEvents, trigger, waitForEvent, type Proc, type Rig } from "./helpers/faults.ts";
import { startCoordinator } from "../services/coordinator/index.ts";
import { leaseBucket, whileLeader } from "../services/coordinator/lease.ts";
import { createLogger } from "../libs/log/index.ts";

const FAST = ["--ack-wait-ms", "1500", "--heartbeat-ms", "300"];

test("a worker killed (-9) mid-task: its work is redelivered and finished by another worker, recorded once", async () => {
  const r = await rig();
  try {
    await r.start("coordinator");
    await r.start("projector");
    const a = await r.start("worker", [...FAST, "--concurrency", "4"]);
    const runId = await trigger(r.nats, "slow", { ms: 2000 });
    await waitForEvent(r.nats, runId, (e) => e.type === "InstanceStarted");
    await stopProcess(a, "SIGKILL");
    const b = await r.start("worker", FAST);
    const state = await waitForRun(r.nats, runId);
    assert.equal(state.state, "success");
    assert.deepEqual(state.tasks.sum!.instances![0]!.result, 30);
    assertOnce(await outcomeCounts(r.nats, runId));
    const ran = executions(r.execLog);
    assert.ok(ran.some((e) => e.pid === a.pid) && ran.some((e) => e.pid === b.pid), "A started the work, B finished it");
    assert.ok(state.tasks.work!.instances!.every((i) => i.worker?.includes(`:${b.pid}:`)));
    const { live, replay } = await projectionAndReplay(r.nats, r.db);
    assert.deepEqual(live, replay);
  } finally {
    await r.close();
  }
});

test("a worker that dies after appending its result but before the ack: the redelivered item is not run or recorded again", async () => {
  const r = await rig();
  try {
    await r.start("coordinator");
    const a = await r.start("worker", [...FAST, "--concurrency", "1"], { MAPFLOW_TEST_CRASH: "after-append" });
    const runId = await trigger(r.nats, "slow", { ms: 50 });
    await new Promise<void>((resolve) => (a.exitCode !== null ? resolve() : a.once("exit", () => resolve())));
    await r.start("worker", FAST);
    const state = await waitForRun(r.nats, runId);
    assert.equal(state.state, "success");
    assertOnce(await outcomeCounts(r.nats, runId));
    const ran = executions(r.execLog);
    for (const i of [0, 1, 2]) assert.equal(ran.filter((e) => e.mapIndex === i).length, 1, `instance ${i} ran once`);
  } finally {
    await r.close();
  }
});

test("a paused worker (SIGSTOP past the ack deadline, then SIGCONT): both copies finish, one result is recorded, the late ack does no harm", async () => {
  const r = await rig();
  try {
    await r.start("coordinator");
    const a = await r.start("worker", [...FAST, "--concurrency", "1"]);
    const runId = await trigger(r.nats, "slow", { ms: 2500 });
    const started = await waitForEvent(r.nats, runId, (e) => e.type === "InstanceStarted");
    a.kill("SIGSTOP");
    await r.start("worker", [...FAST, "--concurrency", "3"]);
    const state = await waitForRun(r.nats, runId);
    assert.equal(state.state, "success");
    a.kill("SIGCONT");
    const paused = (started as { mapIndex: number }).mapIndex;
    const deadline = Date.now() + 15_000;
    while (executions(r.execLog).filter((e) => e.mapIndex === paused).length < 2 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 200));
    await new Promise((res) => setTimeout(res, 3000)); // A finishes its copy and acks late
    assert.equal(executions(r.execLog).filter((e) => e.mapIndex === paused).length, 2, "the paused copy and the redelivered copy both ran");
    assertOnce(await outcomeCounts(r.nats, runId));
    assert.equal((await runEvents(r.nats, runId)).filter((e) => e.event.type === "RunFinished").length, 1);
  } finally {
    await r.close();
  }
});

test("poison work fails its instance with the reason: an unreadable message, a DAG version the workers do not have", async () => {
  const r = await rig();
  try {
    await r.start("worker", [...FAST, "--max-deliver", "3"]);
    const bag = await loadDags(FAULT_DAGS);
    const { dag, version } = pickDag(bag, "slow");
    const runId = "01POISONRUN00000000000000A";
    await appendEvent(r.nats, { type: "RunRequested", runId, dagId: "slow", dagVersion: version, spec: dag.spec, conf: {}, at: 1 });
    await appendEvent(r.nats, { type: "TaskExpanded", runId, taskId: "work", count: 3, at: 2 });
    await r.nats.js.publish(subjects.work("default", runId, "work"), new Uint8Array([0xc1, 0xff, 0x00]), { msgID: msgIds.work(runId, "work", 0, 1) });
    const stale: WorkItem = {
      runId, dagId: "slow", dagVersion: "0000stale0000000", taskId: "work", operator: "function", queue: "default", mapIndex: 1, try: 1,
      args: { i: 1 }, transforms: false, conf: {}, timeoutMs: null, notBefore: 0,
    };
    await r.nats.js.publish(subjects.work("default", runId, "work"), encodeWork(stale), { msgID: msgIds.work(runId, "work", 1, 1) });
    await waitForEvent(r.nats, runId, (e) => e.type === "InstanceFailed" && e.mapIndex === 1, 30_000);
    const state = fold((await runEvents(r.nats, runId)).map((e) => e.event))!;
    const [unreadable, wrongVersion] = state.tasks.work!.instances!;
    assert.equal(unreadable!.state, "failed");
    assert.match(unreadable!.error!.message, /the work message for this instance cannot be decoded/);
    assert.equal(wrongVersion!.state, "failed");
    assert.match(wrongVersion!.error!.message, /the run uses version 0000stale0000000 of DAG 'slow', but worker .* loaded version [0-9a-f]{16}/);
    assertOnce(await outcomeCounts(r.nats, runId));
  } finally {
    await r.close();
  }
});

/**
 * A new worker in place of one the crashing work killed. The new one may take that work and die before
 * it says it is ready; that start failing only means the next turn of the caller's loop starts another.
 */
async function replaceIfDead(r: Rig, worker: Proc, flags: string[]): Promise<Proc> {
  if (worker.exitCode === null && worker.signalCode === null) return worker;
  return r.start("worker", flags).catch(() => worker);
}

test("work that kills every worker that takes it is dead-lettered after MaxDeliver into a failed instance", async () => {
  const r = await rig();
  try {
    await r.start("coordinator");
    let worker = await r.start("worker", ["--ack-wait-ms", "1000", "--max-deliver", "2"]);
    const runId = await trigger(r.nats, "crasher");
    const finished = waitForRun(r.nats, runId);
    let done = false;
    // Either way: a follower that failed must end the loop so its error, not a timeout, is what the test reports.
    void finished.then(() => (done = true), () => (done = true));
    while (!done) {
      worker = await replaceIfDead(r, worker, ["--ack-wait-ms", "1000", "--max-deliver", "2"]);
      await new Promise((res) => setTimeout(res, 200));
    }
    const state = await finished;
    assert.equal(state.state, "failed");
    const instance = state.tasks.crash!.instances![0]!;
    assert.equal(instance.error!.name, "MaxDeliveriesExceeded");
    assert.match(instance.error!.message, /delivered 2 times without an outcome/);
    const work = await r.nats.jsm.streams.info(STREAMS.work);
    assert.equal(work.state.messages, 0, "the dead-lettered message left the work queue");
  } finally {
    await r.close();
  }
});

test("work dead-lettered while no coordinator is up is recorded as failed by the next one (the advisory is kept in a stream)", async () => {
  const r = await rig();
  try {
    const coordinator = await r.start("coordinator");
    const flags = ["--ack-wait-ms", "1000", "--max-deliver", "2"];
    let worker = await r.start("worker", flags);
    const runId = await trigger(r.nats, "crasher");
    await waitForEvent(r.nats, runId, (e) => e.type === "TaskScheduled");
    // The work is published after its decision is appended: killed in between, no message would ever be
    // dead-lettered (the next coordinator republishes it, but this test starts one only after the advisory).
    for (const until = Date.now() + 30_000; (await r.nats.jsm.streams.info(STREAMS.work)).state.last_seq === 0;) {
      assert.ok(Date.now() < until, "the coordinator published the work");
      await new Promise((res) => setTimeout(res, 50));
    }
    await stopProcess(coordinator, "SIGKILL");
    // Both deliveries crash their worker; JetStream gives up on the message while no coordinator listens.
    // Each delivery costs a worker start (a few seconds on a loaded 2-core machine): a generous deadline, not a speed check.
    const deadline = Date.now() + 120_000;
    while ((await r.nats.jsm.streams.info(STREAMS.deadLetters)).state.messages === 0) {
      assert.ok(Date.now() < deadline, "JetStream published a MAX_DELIVERIES advisory");
      worker = await replaceIfDead(r, worker, flags);
      await new Promise((res) => setTimeout(res, 200));
    }
    await r.start("coordinator");
    const state = await waitForRun(r.nats, runId);
    assert.equal(state.state, "failed");
    assert.equal(state.tasks.crash!.instances![0]!.error!.name, "MaxDeliveriesExceeded");
    assert.equal((await r.nats.jsm.streams.info(STREAMS.work)).state.messages, 0, "the dead-lettered message left the work queue");
    assertOnce(await outcomeCounts(r.nats, runId));
  } finally {
    await r.close();
  }
});

test("the coordinator and the projector killed (-9) mid-run: restarted, they lose and duplicate nothing", async () => {
  const r = await rig();
  try {
    let coordinator = await r.start("coordinator");
    let projector = await r.start("projector");
    await r.start("worker", ["--concurrency", "16"]);
    const n = 3000;
    const runId = await trigger(r.nats, "wide_faults", { n });
    await waitForEvent(r.nats, runId, (e) => e.type === "TaskExpanded" && e.taskId === "each");
    await stopProcess(coordinator, "SIGKILL"); // mid-dispatch: its work publishes were in flight
    await stopProcess(projector, "SIGKILL");
    coordinator = await r.start("coordinator");
    await waitForEvent(r.nats, runId, (e) => e.type === "InstanceSucceeded" && e.taskId === "each");
    projector = await r.start("projector");
    await stopProcess(projector, "SIGKILL"); // mid-batch, right after its restart
    projector = await r.start("projector");
    const state = await waitForRun(r.nats, runId, undefined, 0);
    const events = (await runEvents(r.nats, runId)).map((e) => e.event);
    assert.equal(events.filter((e) => e.type === "TaskExpanded").length, 1);
    assert.equal(events.filter((e) => e.type === "RunFinished").length, 1);
    await assertWideRun(r, runId, state, n);
  } finally {
    await r.close();
  }
});

test("a coordinator restarted between a stored result and the expansion over it fetches the value again and expands it", async () => {
  const r = await rig();
  try {
    const coordinator = await r.start("coordinator");
    await r.start("projector");
    await r.start("worker", ["--concurrency", "4"]);
    const runId = await trigger(r.nats, "stored_faults", { ms: 6000 });
    const parts = await waitForEvent(r.nats, runId, (e) => e.type === "InstanceSucceeded" && e.taskId === "parts");
    assert.ok(parts.type === "InstanceSucceeded" && parts.result instanceof StoredValue, "the 1.8 MB result is stored by reference");
    await new Promise((r) => setTimeout(r, 2500)); // past a snapshot: the restart restores the run from its own subjects
    await stopProcess(coordinator, "SIGKILL");
    await r.start("coordinator");
    const state = await waitForRun(r.nats, runId);
    assert.equal(state.state, "success");
    assert.deepEqual(state.tasks.each!.instances!.map((i) => i.result), [600 * 1024, 600 * 1024, 600 * 1024]);
    const { live, replay } = await projectionAndReplay(r.nats, r.db);
    assert.deepEqual(live, replay);
  } finally {
    await r.close();
  }
});

test("backpressure: a work stream at its limit makes the coordinator wait for workers, not fail; the run completes", async () => {
  const r = await rig();
  try {
    // A small DiscardNew limit on the work queue: 600 instances cannot all be queued at once.
    const info = await r.nats.jsm.streams.info(STREAMS.work);
    await r.nats.jsm.streams.update(STREAMS.work, { ...info.config, max_msgs: 50 });
    const coordinator = await r.start("coordinator");
    await r.start("projector");
    await r.start("worker", ["--concurrency", "8"]);
    const n = 600;
    const runId = await trigger(r.nats, "wide_faults", { n });
    await assertWideRun(r, runId, await waitForRun(r.nats, runId), n);
    assert.match(coordinator.output(), /the work stream is full/);
  } finally {
    await r.close();
  }
});

test("the coordinator warns when workers hold nearly MaxAckPending work messages, since JetStream then delivers no more", async () => {
  const r = await rig();
  try {
    const coordinator = await r.start("coordinator");
    await r.start("worker", ["--concurrency", "3", "--max-ack-pending", "3"]);
    const runId = await trigger(r.nats, "slow", { ms: 8000 });
    const deadline = Date.now() + 20_000;
    while (!/nearly MaxAckPending/.test(coordinator.output()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    assert.match(coordinator.output(), /"ackPending":3,"maxAckPending":3.*add workers or raise --max-ack-pending/);
    assert.equal((await waitForRun(r.nats, runId)).state, "success");
  } finally {
    await r.close();
  }
});

test("nats-server killed (-9) and restarted mid-run: every service reconnects and the run completes with nothing lost", async () => {
  const r = await rig();
  try {
    await r.start("coordinator");
    await r.start("projector");
    await r.start("worker", [...FAST, "--concurrency", "16"]); // work in flight at the kill comes back after the ack wait
    const n = 2000;
    const runId = await trigger(r.nats, "wide_faults", { n });
    await waitForEvent(r.nats, runId, (e) => e.type === "InstanceSucceeded" && e.taskId === "each");
    await r.restartServer("SIGKILL");
    await assertWideRun(r, runId, await waitForRun(r.nats, runId), n);
  } finally {
    await r.close();
  }
});

function leaderOf(procs: Proc[]): Proc | undefined {
  return procs.find((p) => /took the coordinator lease/.test(p.output()));
}

async function until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test("nats-server down while a worker appends its outcome: the worker keeps the item and retries, so the try neither runs again nor spends a delivery", async () => {
  const r = await rig();
  try {
    await r.start("coordinator");
    // One delivery only: an item handed back would be dead-lettered, failing the run.
    await r.start("worker", ["--max-deliver", "1", "--ack-wait-ms", "15000"]);
    const runId = await trigger(r.nats, "slow", { ms: 2500 });
    await waitForEvent(r.nats, runId, (e) => e.type === "InstanceStarted");
    await r.restartServer("SIGKILL", 4000); // down across the moment the tries finish and append
    const state = await waitForRun(r.nats, runId);
    assert.equal(state.state, "success");
    assert.equal(state.tasks.sum!.instances![0]!.result, 30);
    assert.deepEqual(executions(r.execLog).map((e) => e.mapIndex).sort(), [0, 1, 2], "each try ran once");
    assertOnce(await outcomeCounts(r.nats, runId));
  } finally {
    await r.close();
  }
});

test("a standby coordinator takes over when the leader is killed (-9); nothing is decided twice", async () => {
  const r = await rig();
  try {
    const coordinators = [await r.start("coordinator", ["--lease-ms", "2000"]), await r.start("coordinator", ["--lease-ms", "2000"])];
    await r.start("worker", ["--concurrency", "16"]);
    await until(() => leaderOf(coordinators) !== undefined, 10_000, "a leader");
    const leader = leaderOf(coordinators)!;
    const standby = coordinators.find((c) => c !== leader)!;
    const n = 2000;
    const runId = await trigger(r.nats, "wide_faults", { n });
    await waitForEvent(r.nats, runId, (e) => e.type === "TaskExpanded" && e.taskId === "each");
    await stopProcess(leader, "SIGKILL");
    const state = await waitForRun(r.nats, runId);
    assert.equal(state.state, "success");
    assert.equal(state.tasks.total!.instances![0]!.result, n * (n - 1));
    assert.match(standby.output(), /took the coordinator lease/);
    const events = (await runEvents(r.nats, runId)).map((e) => e.event);
    for (const taskId of ["n", "each", "total"]) {
      assert.equal(events.filter((e) => (e.type === "TaskExpanded" || e.type === "TaskScheduled") && e.taskId === taskId).length, 1, taskId);
    }
    assert.equal(events.filter((e) => e.type === "RunFinished").length, 1);
    assertOnce(await outcomeCounts(r.nats, runId));
  } finally {
    await r.close();
  }
});

test("a paused leader (SIGSTOP past its lease) loses it; the new leader decides; the stale one steps down and nothing is decided twice", async () => {
  const r = await rig();
  try {
    const a = await r.start("coordinator", ["--lease-ms", "1500"]);
    await until(() => /took the coordinator lease/.test(a.output()), 10_000, "A to lead");
    const b = await r.start("coordinator", ["--lease-ms", "1500"]);
    await r.start("worker", ["--concurrency", "8"]);
    a.kill("SIGSTOP");
    const runId = await trigger(r.nats, "slow", { ms: 300 });
    const state = await waitForRun(r.nats, runId);
    assert.equal(state.state, "success");
    assert.match(b.output(), /took the coordinator lease/);
    a.kill("SIGCONT");
    await until(() => /lost the coordinator lease/.test(a.output()), 10_000, "A to step down");
    await assertNextRunAndDecidedOnce(r, runId);
  } finally {
    await r.close();
  }
});

test("a restart reads the active runs' events from the snapshot, not the whole history", async () => {
  const r = await rig();
  const log = createLogger("test", "warn");
  try {
    const bag = await loadDags(FAULT_DAGS);
    const { dag, version } = pickDag(bag, "slow");
    const old = 1500;
    const appends: Promise<unknown>[] = [];
    for (let i = 0; i < old; i++) {
      const runId = `01OLDRUN${String(i).padStart(18, "0")}`;
      appends.push(appendEvent(r.nats, { type: "RunRequested", runId, dagId: "slow", dagVersion: version, spec: dag.spec, conf: {}, at: i }));
      appends.push(appendEvent(r.nats, { type: "RunFinished", runId, state: "success", at: i + 1 }));
    }
    await Promise.all(appends);
    const active = "01ACTIVERUN000000000000000";
    await appendEvent(r.nats, { type: "RunRequested", runId: active, dagId: "slow", dagVersion: version, spec: dag.spec, conf: {}, at: 1 });

    const first = await startCoordinator({ nats: r.nats, log });
    await waitForEvent(r.nats, active, (e) => e.type === "TaskExpanded");
    await first.stop();
    assert.ok(first.foldedAtStart() >= 2 * old, `without a snapshot the first start reads the whole log (${first.foldedAtStart()})`);

    const second = await startCoordinator({ nats: r.nats, log });
    try {
      assert.ok(second.foldedAtStart() <= 5, `the second start read ${second.foldedAtStart()} events: only the active run's`);
      const events = (await runEvents(r.nats, active)).map((e) => e.event);
      assert.equal(events.filter((e) => e.type === "TaskExpanded").length, 1, "and it does not decide the active run twice");
    } finally {
      await second.stop();
    }
  } finally {
    await r.close();
  }
});

test("durability modes: the durable config makes nats-server fsync before every acknowledgement; the default does not", async () => {
  for (const [mode, syncAlways] of [["durable", true], ["replicated", false]] as const) {
    const dir = tempDir();
    const monitor = await freePort();
    const server = await startNatsServer({ storeDir: dir.path, config: configFor(mode), args: ["-m", String(monitor)] });
    try {
      const varz = (await (await fetch(`http://127.0.0.1:${monitor}/varz`)).json()) as { jetstream: { config: { sync_always?: boolean } } };
      assert.equal(Boolean(varz.jetstream.config.sync_always), syncAlways, mode);
    } finally {
      await server.stop();
      dir.remove();
    }
  }
  const bad = await cli(["run", "sample_repeated_mapping", "--dags", ACCEPTANCE, "--durability", "sometimes"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--durability.*Allowed choices are replicated, durable/);
});

test("stopping a standby leaves the leader's lease alone; stopping the leader hands it over at once", async () => {
  const r = await rig();
  const log = createLogger("test", "warn");
  try {
    const idle = async () => ({ stop: async () => {} });
    const a = await whileLeader(r.nats, log, "A", 3000, idle);
    await until(() => a.isLeader(), 5000, "A to lead");
    const b = await whileLeader(r.nats, log, "B", 3000, idle);
    await new Promise((res) => setTimeout(res, 300));
    await b.stop();
    const kv = await leaseBucket(r.nats, 3000);
    assert.equal((await kv.get(KEYS.coordinatorLease))?.string(), "A", "the standby's stop did not delete A's key");
    await a.stop();
    const after = await kv.get(KEYS.coordinatorLease);
    assert.ok(after === null || after.operation !== "PUT", "the leader deleted its key on stop instead of leaving it to expire");
    const c = await whileLeader(r.nats, log, "C", 3000, idle);
    await until(() => c.isLeader(), 10_000, "C to take the free lease");
    await c.stop();
  } finally {
    await r.close();
  }
});
