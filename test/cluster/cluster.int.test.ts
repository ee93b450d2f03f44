// A real 3-node JetStream cluster (R3 streams): runs survive the loss of any one node, the stream
// leader included; with two nodes down appends fail clearly, and work resumes when a node returns.
import { test } from "node:test";
import assert from "node:assert/strict";
import { STREAMS } from "../../libs/names/index.ts";
import { waitForRun } from "../../services/cli/runs.ts";
import { cli } from "../helpers/index.ts";
import { assertOnce, assertWideRun, outcomeCounts, projectionAndReplay, rig, trigger, waitForEvent } from "../helpers/faults.ts";

test("a 3-node cluster: killing the event stream's leader node mid-run loses nothing; the run completes", async () => {
  const r = await rig({ cluster: true });
  try {
    const info = await r.nats.jsm.streams.info(STREAMS.events);
    assert.equal(info.config.num_replicas, 3, "streams are replicated on all three nodes");
    await r.start("coordinator", ["--lease-ms", "2000"]);
    await r.start("projector");
    await r.start("worker", ["--concurrency", "16", "--ack-wait-ms", "3000"]);
    const n = 2000;
    const runId = await trigger(r.nats, "wide_faults", { n });
    await waitForEvent(r.nats, runId, (e) => e.type === "InstanceSucceeded" && e.taskId === "each");
    const leader = (await r.nats.jsm.streams.info(STREAMS.events)).cluster?.leader;
    const index = r.cluster!.nodes.findIndex((node) => node.name === leader);
    assert.ok(index >= 0, `found the stream leader (${leader})`);
    await r.cluster!.stop(index, "SIGKILL");
    await assertWideRun(r, runId, await waitForRun(r.nats, runId), n);
  } finally {
    await r.close();
  }
});

test("two of three nodes down: a trigger fails with a clear error; the run in progress resumes when a node returns", async () => {
  const r = await rig({ cluster: true });
  try {
    await r.start("coordinator", ["--lease-ms", "2000"]);
    await r.start("projector");
    await r.start("worker", ["--concurrency", "4", "--ack-wait-ms", "3000"]);
    const runId = await trigger(r.nats, "slow", { ms: 1500 });
    await waitForEvent(r.nats, runId, (e) => e.type === "InstanceStarted");
    await r.cluster!.stop(1, "SIGKILL");
    await r.cluster!.stop(2, "SIGKILL");

    const refused = await cli(["trigger", "slow", "--nats", r.urls, "--credentials", r.cluster!.credentialsFile], { timeoutMs: 60_000 });
    assert.equal(refused.code, 3, refused.stderr);
    assert.match(refused.stderr, /a cluster needs a majority of its nodes up/);

    await r.cluster!.start(1);
    const state = await waitForRun(r.nats, runId);
    assert.equal(state.state, "success");
    assert.equal(state.tasks.sum!.instances![0]!.result, 30);
    assertOnce(await outcomeCounts(r.nats, runId));
    const { live, replay } = await projectionAndReplay(r.nats, r.db, 60_000);
    assert.deepEqual(live, replay);
  } finally {
    await r.close();
  }
});
