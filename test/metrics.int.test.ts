// Prometheus metrics from real service processes: each serves /metrics on --metrics-port, scraped
// during and after runs; `standalone` also serves them on the UI's port, behind the API token.
import { test } from "node:test";
import assert from "node:assert/strict";
import { waitForRun } from "../services/cli/runs.ts";
import { projectionLag } from "../services/projector/index.ts";
import { appendEvent } from "../libs/nats/index.ts";
import { loadDags, pickDag } from "../libs/dags/index.ts";
import { bearer, connectToStandalone, printedToken, startCli, tempDir } from "./helpers/index.ts";
import { FAULT_DAGS, rig, trigger, waitForEvent } from "./helpers/faults.ts";
import { metricsUrl, scrape, scrapeUntil } from "./helpers/metrics.ts";

const PROCESS_METRICS = ["process_cpu_user_seconds_total", "process_resident_memory_bytes", "nodejs_eventloop_lag_seconds"];

test("each service serves Prometheus metrics on --metrics-port: queue depth during a run, then counts that match the runs", async () => {
  const r = await rig();
  try {
    const coordinator = metricsUrl((await r.start("coordinator", ["--metrics-port", "0"])).output());
    const projector = metricsUrl((await r.start("projector", ["--metrics-port", "0"])).output());
    const worker = metricsUrl((await r.start("worker", ["--metrics-port", "0", "--concurrency", "8"])).output());

    // During a run: three slow tries are out on the worker, unacknowledged.
    const slow = await trigger(r.nats, "slow", { ms: 4000 });
    await waitForEvent(r.nats, slow, (e) => e.type === "InstanceStarted");
    const busy = await scrapeUntil(worker, (s) => s.value("mapflow_worker_tries_running", { queue: "default" }) === 3);
    assert.equal(busy.value("mapflow_work_ack_pending", { queue: "default" }), 3);
    assert.equal(busy.value("mapflow_work_pending", { queue: "default" }), 0);
    const deciding = await scrape(coordinator);
    assert.equal(deciding.value("mapflow_work_ack_pending", { queue: "default" }), 3, "the coordinator reads every queue's consumer");
    assert.equal(deciding.value("mapflow_coordinator_leader"), 1);
    assert.equal((await waitForRun(r.nats, slow)).state, "success");

    // A wide run and one with retries: 25 of flaky_faults' 50 instances fail their first try.
    const n = 300;
    const wide = await trigger(r.nats, "wide_faults", { n });
    const flaky = await trigger(r.nats, "flaky_faults");
    assert.equal((await waitForRun(r.nats, wide)).state, "success");
    assert.equal((await waitForRun(r.nats, flaky)).state, "success");
    // slow: 3 + sum; wide: n + 'n' + total; flaky: 50 (each succeeds at last) + count.
    const succeeded = 4 + (n + 2) + 51;

    const w = await scrape(worker);
    assert.equal(w.value("mapflow_instance_duration_seconds_count", { dag: "wide_faults", task: "each" }), n, "one duration per instance of the run");
    assert.equal(w.value("mapflow_instance_duration_seconds_bucket", { dag: "wide_faults", task: "each", le: "+Inf" }), n);
    assert.equal(w.value("mapflow_instance_duration_seconds_count", { dag: "slow", task: "work" }), 3);
    // Each slow try sleeps 4 s: none can fall in a bucket of 2.5 s or less, and the sum counts seconds, not milliseconds.
    assert.equal(w.value("mapflow_instance_duration_seconds_bucket", { dag: "slow", task: "work", le: "2.5" }), 0);
    assert.ok(w.value("mapflow_instance_duration_seconds_sum", { dag: "slow", task: "work" })! >= 3 * 3.9);
    assert.equal(w.value("mapflow_instance_duration_seconds_count", { dag: "flaky_faults", task: "try" }), 75, "50 first tries and 25 retries");
    assert.equal(w.value("mapflow_events_appended_total", { type: "InstanceSucceeded" }), succeeded);
    assert.equal(w.value("mapflow_events_appended_total", { type: "InstanceFailed" }), 25);
    // Retry work waits out its delay by a redelivery, but only if it arrives early: how many is not fixed.
    assert.equal(typeof w.value("mapflow_work_redeliveries_total", { queue: "default" }), "number");
    assert.equal(w.value("mapflow_work_handed_back_total", { queue: "default" }), 0);
    assert.equal(w.value("mapflow_worker_tries_running", { queue: "default" }), 0);

    const c = await scrape(coordinator);
    assert.equal(c.value("mapflow_coordinator_leader"), 1);
    assert.equal(c.value("mapflow_instance_retries_total", { dag: "flaky_faults", task: "try" }), 25);
    assert.equal(c.value("mapflow_events_applied_total", { service: "coordinator", type: "InstanceSucceeded" }), succeeded);
    assert.equal(c.value("mapflow_events_applied_total", { service: "coordinator", type: "RunRequested" }), 3);
    assert.equal(c.value("mapflow_events_appended_total", { type: "InstanceRetried" }), 25);
    assert.equal(c.value("mapflow_events_appended_total", { type: "RunFinished" }), 3);
    assert.equal(c.value("mapflow_work_pending", { queue: "default" }), 0);
    assert.equal(c.value("mapflow_work_ack_pending", { queue: "default" }), 0);

    const p = await scrapeUntil(projector, (s) => s.value("mapflow_events_applied_total", { service: "projector", type: "RunFinished" }) === 3);
    assert.equal(p.value("mapflow_events_applied_total", { service: "projector", type: "InstanceSucceeded" }), succeeded);
    assert.equal(p.value("mapflow_events_applied_total", { service: "projector", type: "InstanceFailed" }), 25);
    const caughtUp = await scrapeUntil(projector, (s) => s.value("mapflow_projection_lag_events") === 0);
    assert.equal(caughtUp.value("mapflow_projection_lag_seconds"), 0);

    for (const [url, s] of [[coordinator, c], [projector, p], [worker, w]] as const) {
      for (const name of PROCESS_METRICS) assert.ok(s.has(name), `${url} has prom-client's ${name}`);
    }
    const other = await fetch(coordinator.replace(/\/metrics$/, "/"));
    assert.equal(other.status, 404);
  } finally {
    await r.close();
  }
});

test("projection lag: the events after the applied sequence, and the age of the first of them", async () => {
  const r = await rig();
  try {
    const { dag, version } = pickDag(await loadDags(FAULT_DAGS), "slow");
    const runId = "01LAGRUN000000000000000000";
    const first = await appendEvent(r.nats, { type: "RunRequested", runId, dagId: "slow", dagVersion: version, spec: dag.spec, conf: {}, at: 1 });
    await new Promise((res) => setTimeout(res, 300));
    await appendEvent(r.nats, { type: "RunCancelRequested", runId, at: 2 });
    const last = await appendEvent(r.nats, { type: "RunCancelRequested", runId, at: 3 });
    const now = Date.now();
    const behind = await projectionLag(r.nats, first.seq - 1, now);
    assert.equal(behind.events, last.seq - first.seq + 1);
    const fresh = await projectionLag(r.nats, first.seq, now);
    assert.equal(fresh.events, 2);
    // Measured at one `now`: the first event is older than the second by the pause between their appends.
    assert.ok(behind.seconds - fresh.seconds >= 0.25, `lag ${behind.seconds} s from the first event, ${fresh.seconds} s from the second`);
    assert.deepEqual(await projectionLag(r.nats, last.seq, now), { events: 0, seconds: 0 });
  } finally {
    await r.close();
  }
});

test("standalone serves /metrics on the UI's port behind the API token, and on --metrics-port", async () => {
  const dir = tempDir();
  const standalone = await startCli(
    ["standalone", "--dags", FAULT_DAGS, "--data", dir.path, "--ui-port", "0", "--metrics-port", "0"],
    /metrics at http/, 60_000, { MAPFLOW_API_TOKEN: "" },
  );
  try {
    const ui = /web UI at (http:\/\/127\.0\.0\.1:\d+)/.exec(standalone.output())![1]!;
    const token = printedToken(standalone.output());
    const port = metricsUrl(standalone.output());
    const nats = await connectToStandalone(dir.path);
    try {
      const n = 40;
      const runId = await trigger(nats, "wide_faults", { n });
      assert.equal((await waitForRun(nats, runId)).state, "success");
    } finally {
      await nats.nc.close();
    }

    const refused = await fetch(`${ui}/metrics`);
    assert.equal(refused.status, 401, "the UI's port shows metrics only with the token");
    assert.equal((await fetch(`${ui}/metrics`, { headers: bearer("not-the-token-at-all") })).status, 401);
    for (const [url, headers] of [[`${ui}/metrics`, bearer(token)], [port, {}]] as const) {
      const s = await scrapeUntil(url, (m) => m.value("mapflow_events_applied_total", { service: "projector", type: "RunFinished" }) === 1, 20_000, headers);
      assert.equal(s.value("mapflow_coordinator_leader"), 1, url);
      assert.equal(s.value("mapflow_instance_duration_seconds_count", { dag: "wide_faults", task: "each" }), 40, url);
      assert.equal(s.value("mapflow_events_applied_total", { service: "coordinator", type: "InstanceSucceeded" }), 42, url);
      assert.equal(s.value("mapflow_events_applied_total", { service: "projector", type: "InstanceSucceeded" }), 42, url);
      assert.equal(s.value("mapflow_work_ack_pending", { queue: "default" }), 0, url);
      assert.ok(s.has("process_cpu_user_seconds_total"), url);
    }
  } finally {
    const exited = new Promise<number | null>((res) => standalone.once("exit", res));
    standalone.kill("SIGTERM");
    assert.equal(await exited, 0, `standalone exits 0 on SIGTERM:\n${standalone.output()}`);
    dir.remove();
  }
});

