// ctx.kv and worker heartbeats on a real stack: concurrent compare-and-set updates lose nothing, scopes keep runs apart,
// and `mapflow workers` lists live workers with their queues and concurrency until they stop.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadDags, pickDag, type DagBag } from "../libs/dags/index.ts";
import { runReport, type RunState, type WorkItem, type WorkerPresence } from "../libs/core/index.ts";
import { decodeValue } from "../libs/codec/index.ts";
import { TaskKvError } from "../libs/errors.ts";
import { createLogger } from "../libs/log/index.ts";
import { BUCKETS, kvKeys } from "../libs/names/index.ts";
import { MAX_KV_VALUE_BYTES, taskKvBucket } from "../libs/nats/index.ts";
import { startStack, type Stack } from "../services/stack/index.ts";
import { startWorker } from "../services/worker/index.ts";
import { taskKvs } from "../services/worker/kv.ts";
import { cleanRuns } from "../services/audit/clean.ts";
import { requestRun, waitForRun } from "../services/cli/runs.ts";
import { bearer, cli, FIXTURES, startCli, stopProcess, tempDir } from "./helpers/index.ts";
import { SCORES } from "./fixtures/artifacts/kv_best.ts";

const dir = tempDir();
const log = createLogger("test", "fatal");
let stack: Stack;
let bag: DagBag;

before(async () => {
  bag = await loadDags(join(FIXTURES, "artifacts"));
  // Two workers, so the trials' updates race from two consumers as well as within each.
  stack = await startStack({ dataDir: dir.path, bag, log, workers: 2, ui: { port: 0 } });
});

after(async () => {
  await stack?.stop();
  dir.remove();
});

async function runDag(dagId: string): Promise<RunState> {
  const { version, dag } = pickDag(bag, dagId);
  return waitForRun(stack.nats, await requestRun(stack.nats, { dagId, version, spec: dag.spec, conf: {} }));
}

test("concurrent trials each update 'best': it ends at the highest score, and a counter every trial bumps loses no update", async () => {
  const first = await runDag("kv_best");
  const second = await runDag("kv_best");
  const reportOf = (state: RunState) => runReport(state).tasks["report"]!.instances[0]!.result;
  const best = Math.max(...SCORES);
  // Run-scoped keys start afresh in each run; the DAG's scope counts both runs.
  assert.deepEqual(reportOf(first), { best, trials: SCORES.length, runs: 1, note: { done: true } });
  assert.deepEqual(reportOf(second), { best, trials: SCORES.length, runs: 2, note: { done: true } });

  const kv = await taskKvBucket(stack.nats);
  const value = async (key: string) => decodeValue((await kv.get(key))!.value);
  assert.equal(await value(kvKeys.run(first.runId, "best")), best);
  assert.equal(await value(kvKeys.dag("kv_best", "runs")), 2);
  assert.equal((await kv.status()).bucket, BUCKETS.taskKv);
});

test("ctx.kv scopes: a run's keys are its own, the DAG's are shared; bad keys and values are refused with what to change", async () => {
  const item = (runId: string) => ({ runId, dagId: "kv_scopes", taskId: "t", mapIndex: -1, try: 1 }) as WorkItem;
  const kvOf = taskKvs(stack.nats);
  const a = kvOf(item("01RUNA"));
  const b = kvOf(item("01RUNB"));
  await a.put("shared.name", "from a");
  assert.equal(await b.get("shared.name"), undefined, "another run does not see it");
  await a.dag.put("shared.name", { by: "a" });
  assert.deepEqual(await b.dag.get("shared.name"), { by: "a" }, "the DAG's scope is shared");

  assert.equal(await a.update<number>("n", (n) => (n ?? 0) + 5), 5);
  assert.equal(await a.update<number>("n", () => undefined), 5, "returning undefined leaves it");
  await a.delete("n");
  assert.equal(await a.get("n"), undefined);
  assert.equal(await a.update<number>("n", (n) => (n ?? 0) + 1), 1, "a deleted key is created again");
  // Fifty updates at once all read the same revision first: all but one conflict and retry, and none is lost.
  await Promise.all(Array.from({ length: 50 }, () => a.update<number>("racing", (n) => (n ?? 0) + 1)));
  assert.equal(await a.get("racing"), 50);

  const refused = async (call: Promise<unknown>, message: RegExp) => assert.rejects(call, (e: Error) => e instanceof TaskKvError && message.test(e.message));
  await refused(a.put("two words", 1), /ctx\.kv key "two words" is not valid: use up to 200 letters/);
  await refused(a.get("best.*"), /is not valid/);
  await refused(a.dag.put(".lead", 1), /ctx\.kv\.dag key "\.lead" is not valid/);
  await refused(a.put("big", "x".repeat(MAX_KV_VALUE_BYTES + 10)), /over the 1048576-byte limit; store large data with ctx\.artifact/);
  await refused(a.put("nothing", undefined), /store null, or delete the key/);
  await refused(a.put("counts", { byKey: new Map([["a", 1]]) }), /value for 'counts' cannot be stored: value\.byKey is a Map \(it would arrive as \{\}\)/);
});

test("`mapflow workers --json` lists workers on other queues with their queue and concurrency; one that stops is gone", async () => {
  // One a `mapflow worker` process (stopped by SIGTERM), one in this process (stopped by stop()).
  const train = await startCli(["worker", "--nats", stack.url, "--credentials", stack.server.credentialsFile, "--dags", join(FIXTURES, "artifacts"), "--queue", "train", "--concurrency", "4", "--name", "trainer"], /worker trainer ready/);
  const gpu = await startWorker({ nats: stack.nats, log, bag, queue: "gpu", concurrency: 2, name: "gpu-box" });
  let gpuRunning = true;
  const listed = async () => {
    const { code, stdout, stderr } = await cli(["workers", "--json", "--nats", stack.url, "--credentials", stack.server.credentialsFile]);
    assert.equal(code, 0, stderr);
    return (JSON.parse(stdout) as { workers: WorkerPresence[] }).workers;
  };
  try {
    const workers = await listed();
    const mine = workers.filter((w) => w.name === "trainer" || w.name === "gpu-box");
    assert.deepEqual(mine.map((w) => [w.name, w.queues, w.concurrency, w.running, w.pid]), [["gpu-box", ["gpu"], 2, 0, process.pid], ["trainer", ["train"], 4, 0, train.pid]]);
    for (const w of mine) assert.ok(w.ageMs >= 0 && w.lastBeatAt > 0 && w.startedAt > 0 && typeof w.host === "string", JSON.stringify(w));
    // The stack's own two workers serve the default queue, under one name (same host, pid and queue) but their own keys.
    const stackWorkers = workers.filter((w) => w.queues.includes("default"));
    assert.equal(stackWorkers.length, 2);
    assert.notEqual(stackWorkers[0]!.key, stackWorkers[1]!.key);

    const api = await fetch(`${stack.ui!.url}/api/workers`, { headers: bearer(stack.ui!.token.value) });
    assert.deepEqual(((await api.json()) as WorkerPresence[]).map((w) => w.name).sort(), workers.map((w) => w.name).sort());

    await gpu.stop();
    gpuRunning = false;
    assert.deepEqual((await listed()).filter((w) => w.queues[0] !== "default").map((w) => w.name), ["trainer"]);
    const text = await cli(["workers", "--nats", stack.url, "--credentials", stack.server.credentialsFile]);
    assert.match(text.stdout, /^3 live workers\n/);
    assert.match(text.stdout, /trainer\s+\S+\s+\d+\s+train\s+4\s+0\s/);

    await stopProcess(train);
    assert.deepEqual((await listed()).filter((w) => w.queues[0] !== "default"), [], "SIGTERM removed its heartbeat");
  } finally {
    if (gpuRunning) await gpu.stop();
    await stopProcess(train);
  }
});

test("db clean purges a cleaned run's ctx.kv keys and keeps the DAG's", async () => {
  const kv = await taskKvBucket(stack.nats);
  const keys = async (filter: string) => {
    const found: string[] = [];
    for await (const key of await kv.keys(filter)) found.push(key);
    return found.sort();
  };
  assert.equal((await keys("run.>")).length, 9);
  const report = await cleanRuns(stack.nats, { before: Date.now() + 60_000, archive: null, dryRun: false, dbPath: join(dir.path, "mapflow.sqlite") });
  assert.equal(report.runs.length, 2, "the two kv_best runs");
  // Each kv_best run had best, trials and note.final; the keys the scopes test wrote belong to no run in the log, so they stay.
  assert.equal(report.kvKeysDeleted, 6);
  assert.deepEqual(await keys("run.>"), ["run.01RUNA.n", "run.01RUNA.racing", "run.01RUNA.shared.name"]);
  assert.deepEqual(await keys("dag.kv_best.>"), ["dag.kv_best.runs"]);
});
