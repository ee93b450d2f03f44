// Clean stops of real service processes (SIGTERM): a busy worker finishes its tries within its grace
// period, or hands back the ones still running for another worker; a leading coordinator releases its
// lease for the standby. Each exits 0, and every instance is recorded exactly once.
import { test } from "node:test";
import assert from "node:assert/strict";
import { hostname } from "node:os";
import { Kvm, KvWatchInclude } from "@nats-io/kv";
import { BUCKETS, KEYS } from "../libs/names/index.ts";
import { waitForRun } from "../services/cli/runs.ts";
import { assertNextRunAndDecidedOnce, assertOnce, executions, outcomeCounts, projectionAndReplay, rig, runEvents, trigger, waitForEvent, type Proc } from "./helpers/faults.ts";

/** Sends `signal` and resolves with the exit code; a process still running after `timeoutMs` is killed and the test fails. */
async function stopWith(p: Proc, signal: NodeJS.Signals, timeoutMs = 120_000): Promise<number | null> {
  assert.equal(p.exitCode, null, "the process is still running");
  const exited = new Promise<number | null>((resolve) => p.once("exit", (code) => resolve(code)));
  p.kill(signal);
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<"late">((resolve) => (timer = setTimeout(resolve, timeoutMs, "late")));
  const code = await Promise.race([exited, late]);
  clearTimeout(timer);
  if (code === "late") {
    p.kill("SIGKILL");
    assert.fail(`the process did not exit within ${timeoutMs} ms of ${signal}:\n${p.output()}`);
  }
  return code;
}

async function until(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test("SIGTERM on a busy worker: it takes no more work, finishes its running tries within the grace period, records them and exits 0", async () => {
  const r = await rig();
  try {
    await r.start("coordinator");
    const a = await r.start("worker", ["--concurrency", "4", "--grace-ms", "60000"]);
    const runId = await trigger(r.nats, "slow", { ms: 3000 });
    await until(() => executions(r.execLog).filter((e) => e.pid === a.pid).length === 3, 20_000, "A to run the three tries");
    assert.equal(await stopWith(a, "SIGTERM"), 0, a.output());
    assert.match(a.output(), /"running":3.*letting the running tries finish/);
    assert.match(a.output(), /worker stopped/);
    assert.doesNotMatch(a.output(), /handed back/);
    // Its three tries are recorded, by A; the reduce after them waits for a worker.
    const events = (await runEvents(r.nats, runId)).map((e) => e.event);
    const work = events.filter((e) => e.type === "InstanceSucceeded" && e.taskId === "work");
    assert.equal(work.length, 3);
    assert.ok(work.every((e) => e.type === "InstanceSucceeded" && e.worker.includes(`:${a.pid}:`)));
    assert.equal(events.filter((e) => e.type === "InstanceFailed").length, 0);

    await r.start("worker");
    const state = await waitForRun(r.nats, runId);
    assert.equal(state.state, "success");
    assert.equal(state.tasks.sum!.instances![0]!.result, 30);
    assertOnce(await outcomeCounts(r.nats, runId));
    for (const i of [0, 1, 2]) assert.equal(executions(r.execLog).filter((e) => e.mapIndex === i).length, 1, `instance ${i} ran once`);
  } finally {
    await r.close();
  }
});

test("SIGTERM on a busy worker past its grace period: it hands its tries back, exits 0, and another worker runs them; recorded once, none failed", async () => {
  const r = await rig();
  try {
    await r.start("coordinator");
    // A's tries would take ten minutes, and the ack deadline is as long as the test's own timeout:
    // only a hand-back gets them to B before the test fails.
    const flags = ["--ack-wait-ms", "600000"];
    const a = await r.start("worker", [...flags, "--concurrency", "4", "--grace-ms", "1000"], { MAPFLOW_TEST_SLOW_MS: "600000" });
    const runId = await trigger(r.nats, "slow", { ms: 200 });
    await until(() => executions(r.execLog).filter((e) => e.pid === a.pid).length === 3, 20_000, "A to start the three tries");
    assert.equal(await stopWith(a, "SIGTERM"), 0, a.output());
    assert.match(a.output(), /"handedBack":3.*handed back the tries still running after the grace period/);
    const before = (await runEvents(r.nats, runId)).map((e) => e.event);
    assert.equal(before.filter((e) => e.type === "InstanceSucceeded" || e.type === "InstanceFailed").length, 0, "A recorded nothing for the tries it handed back");

    const b = await r.start("worker", flags);
    const state = await waitForRun(r.nats, runId);
    assert.equal(state.state, "success");
    assert.equal(state.tasks.sum!.instances![0]!.result, 30);
    for (const instance of state.tasks.work!.instances!) {
      assert.equal(instance.try, 1, "a handed-back try is not a failure: it runs again under the same try number");
      assert.ok(instance.worker?.includes(`:${b.pid}:`), `instance ${instance.mapIndex} was recorded by B`);
    }
    const events = (await runEvents(r.nats, runId)).map((e) => e.event);
    assert.equal(events.filter((e) => e.type === "InstanceFailed" || e.type === "InstanceRetried").length, 0);
    assertOnce(await outcomeCounts(r.nats, runId));
    const ran = executions(r.execLog);
    for (const i of [0, 1, 2]) {
      assert.deepEqual(ran.filter((e) => e.mapIndex === i && e.try === 1).map((e) => e.pid), [a.pid, b.pid], `instance ${i}: started on A, run again on B`);
    }
  } finally {
    await r.close();
  }
});

test("SIGTERM on the leading coordinator: it stops deciding, deletes its lease key and exits 0; the standby takes the lease and decides", async () => {
  const r = await rig();
  try {
    // A long lease, so that a standby taking over by its expiry (no release) would show no deletion below.
    const lease = ["--lease-ms", "60000"];
    const leader = await r.start("coordinator", lease);
    await until(() => /took the coordinator lease/.test(leader.output()), 10_000, "the first coordinator to lead");
    const standby = await r.start("coordinator", lease);
    await r.start("worker", ["--concurrency", "8"]);
    const first = await trigger(r.nats, "slow", { ms: 50 });
    assert.equal((await waitForRun(r.nats, first)).state, "success");

    const kv = await new Kvm(r.nats.js).open(BUCKETS.leases);
    const seen: { operation: string; value: string }[] = [];
    const watch = await kv.watch({ key: KEYS.coordinatorLease, include: KvWatchInclude.UpdatesOnly });
    void (async () => {
      for await (const e of watch) seen.push({ operation: e.operation, value: e.string() });
    })();
    try {
      assert.equal(await stopWith(leader, "SIGTERM"), 0, leader.output());
      assert.match(leader.output(), /released the coordinator lease/);
      const standbyHolder = `${hostname()}:${standby.pid}`;
      await until(() => seen.some((e) => e.operation === "PUT" && e.value === standbyHolder), 120_000, "the standby to take the lease");
      const released = seen.findIndex((e) => e.operation === "DEL" || e.operation === "PURGE");
      const taken = seen.findIndex((e) => e.operation === "PUT" && e.value === standbyHolder);
      assert.ok(released >= 0 && released < taken, `the leader deleted its key before the standby took it: ${JSON.stringify(seen)}`);
      // Its log line may reach us just after the server has the lease key.
      await until(() => /took the coordinator lease/.test(standby.output()), 10_000, "the standby to say it took the lease");
    } finally {
      watch.stop();
    }

    await assertNextRunAndDecidedOnce(r, first);
  } finally {
    await r.close();
  }
});

test("SIGTERM on a projector mid-run: it writes what it folded and exits 0; the next one goes on from there to equal a replay", async () => {
  const r = await rig();
  try {
    await r.start("coordinator");
    await r.start("worker");
    const projector = await r.start("projector");
    const runId = await trigger(r.nats, "wide_faults", { n: 2000 });
    await waitForEvent(r.nats, runId, (e) => e.type === "InstanceSucceeded" && e.taskId === "each");
    assert.equal(await stopWith(projector, "SIGTERM"), 0, projector.output());
    assert.match(projector.output(), /projector stopped/);
    assert.equal((await waitForRun(r.nats, runId)).state, "success");
    await r.start("projector");
    const { live, replay } = await projectionAndReplay(r.nats, r.db);
    assert.deepEqual(live, replay);
  } finally {
    await r.close();
  }
});
