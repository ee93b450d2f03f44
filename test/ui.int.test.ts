// The web UI's JSON API and live stream on a real stack: what the screens read, and the actions they take.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadDags, pickDag, type DagBag } from "../libs/dags/index.ts";
import { createLogger } from "../libs/log/index.ts";
import { startStack, type Stack } from "../services/stack/index.ts";
import { requestRun, waitForRun } from "../services/cli/runs.ts";
import { ROOT, startCli, tempDir } from "./helpers/index.ts";
import { startUi } from "../services/ui/index.ts";
import { BadInputError } from "../libs/errors.ts";

const dir = tempDir();
let stack: Stack;
let bag: DagBag;
let base: string;
let runId: string;

async function api(path: string, init?: RequestInit): Promise<{ status: number; body: any }> {
  const res = await fetch(`${base}${path}`, init);
  return { status: res.status, body: await res.json() };
}
const postJson = (path: string, body: unknown) => api(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

/** Resolves with the first `change` message of the live stream that names `runId`. */
async function nextChange(run: string, signal: AbortSignal): Promise<{ seq: number; runs: { runId: string; state: string }[] }> {
  const res = await fetch(`${base}/api/live`, { signal });
  assert.equal(res.headers.get("content-type"), "text/event-stream");
  const decoder = new TextDecoder();
  let text = "";
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    text += decoder.decode(chunk, { stream: true });
    for (const block of text.split("\n\n").slice(0, -1)) {
      const data = /^event: change\ndata: (.*)$/m.exec(block)?.[1];
      if (data && (JSON.parse(data) as { runs: { runId: string }[] }).runs.some((r) => r.runId === run)) return JSON.parse(data);
    }
    text = text.slice(text.lastIndexOf("\n\n") + 2);
  }
  throw new Error("the live stream ended");
}

before(async () => {
  bag = await loadDags(join(ROOT, "examples"));
  stack = await startStack({ dataDir: dir.path, bag, log: createLogger("test", "warn"), ui: { port: 0 } });
  base = stack.ui!.url;
  const { version, dag } = pickDag(bag, "sample_repeated_mapping");
  runId = await requestRun(stack.nats, { dagId: "sample_repeated_mapping", version, spec: dag.spec, conf: {} });
  await waitForRun(stack.nats, runId);
  await stack.projector.waitFor(await lastSeq());
});

after(async () => {
  await stack?.stop();
  dir.remove();
});

async function lastSeq(): Promise<number> {
  return (await stack.nats.jsm.streams.info("MF_EVENTS")).state.last_seq;
}

test("the UI binds to 127.0.0.1 and serves the app on any page path", async () => {
  assert.match(base, /^http:\/\/127\.0\.0\.1:\d+$/);
  const page = await fetch(`${base}/runs/${runId}`);
  assert.equal(page.status, 200);
  assert.match(await page.text(), /<script type="module" src="\/app\.js">/);
  const js = await fetch(`${base}/app.js`);
  assert.equal(js.status, 200);
  assert.ok((await js.text()).length > 10_000, "the bundled client is served");
});

test("DAGs list their latest runs; a run has its graph, tasks in graph order and counts per state", async () => {
  const dags = await api("/api/dags");
  const seed = dags.body.find((d: { dagId: string }) => d.dagId === "sample_repeated_mapping");
  assert.ok(seed.runs.some((r: { runId: string; state: string }) => r.runId === runId && r.state === "success"));
  const run = await api(`/api/runs/${runId}`);
  assert.equal(run.status, 200);
  assert.equal(run.body.spec.id, "sample_repeated_mapping");
  assert.deepEqual(run.body.tasks.map((t: { taskId: string }) => t.taskId), run.body.spec.tasks.map((t: { id: string }) => t.id));
  const add = run.body.tasks.find((t: { taskId: string }) => t.taskId === "add");
  assert.deepEqual({ mapped: add.mapped, mapCount: add.mapCount, counts: add.counts, state: add.state }, { mapped: true, mapCount: 6, counts: { success: 6 }, state: "success" });
});

test("instances page, sort and filter on the server", async () => {
  const path = `/api/runs/${runId}/tasks/add/instances`;
  const page = await api(`${path}?limit=4&offset=2`);
  assert.equal(page.body.total, 6);
  assert.deepEqual(page.body.rows.map((r: { mapIndex: number }) => r.mapIndex), [2, 3, 4, 5]);
  const byResult = await api(`${path}?sort=map_index&order=desc&limit=2`);
  assert.deepEqual(byResult.body.rows.map((r: { mapIndex: number }) => r.mapIndex), [5, 4]);
  assert.deepEqual(byResult.body.rows.map((r: { result: string }) => JSON.parse(r.result)), [18, 13]);
  assert.equal((await api(`${path}?state=failed`)).body.total, 0);
  const bad = await api(`${path}?sort=result`);
  assert.equal(bad.status, 400);
  assert.match(bad.body.error, /sort must be one of/);
  const one = await api(`${path}/1`);
  assert.equal(one.body.result, "12");
});

test("an instance's logs come from NATS, per try", async () => {
  const logs = await api(`/api/runs/${runId}/tasks/print_x/instances/-1/logs`);
  assert.equal(logs.status, 200);
  assert.equal(logs.body.length, 1);
  assert.equal(logs.body[0].try, 1);
  assert.match(logs.body[0].lines[0].msg, /reduce received the mapped results/);
  assert.deepEqual((await api(`/api/runs/${runId}/tasks/add/instances/0/logs`)).body, []);
});

test("a run's history is its events in log order, from RunRequested to RunFinished", async () => {
  const history = await api(`/api/runs/${runId}/history`);
  const types = history.body.events.map((e: { event: { type: string } }) => e.event.type);
  assert.equal(types[0], "RunRequested");
  assert.equal(types.at(-1), "RunFinished");
  const seqs = history.body.events.map((e: { seq: number }) => e.seq);
  assert.deepEqual(seqs, [...seqs].sort((a: number, b: number) => a - b));
  assert.equal(history.body.truncated, false);
});

test("unknown things are 404, bad input is 400 with what to do, and actions need a JSON body", async () => {
  assert.equal((await api("/api/runs/01NOPE")).status, 404);
  assert.equal((await api("/api/runs/bad.id")).status, 400);
  assert.equal((await api("/api/nothing")).status, 404);
  assert.equal((await api(`/api/runs/${runId}`, { method: "POST" })).status, 405);
  // A form post from another site cannot carry a JSON content type without a preflight.
  const form = await api(`/api/runs/${runId}/clear`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: "taskId=add" });
  assert.equal(form.status, 400);
  assert.match(form.body.error, /content-type application\/json/);
  const cancel = await postJson(`/api/runs/${runId}/cancel`, {});
  assert.equal(cancel.status, 400);
  assert.match(cancel.body.error, /already ended/);
  const wrongIndex = await postJson(`/api/runs/${runId}/clear`, { taskId: "add", mapIndexes: [99] });
  assert.equal(wrongIndex.status, 400);
  assert.match(wrongIndex.body.error, /no instance with map index 99/);
  const big = await api(`/api/dags/sample_repeated_mapping/trigger`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ conf: { x: "y".repeat(1_100_000) } }) });
  assert.equal(big.status, 400);
  assert.match(big.body.error, /over 1048576 bytes/);
});

test("clearing one instance re-runs it and the live stream names the run as it moves", async () => {
  const stop = new AbortController();
  const change = nextChange(runId, stop.signal);
  // The stream is listening once its hello arrives; the clear comes after.
  await new Promise((r) => setTimeout(r, 300));
  const cleared = await postJson(`/api/runs/${runId}/clear`, { taskId: "add", mapIndexes: [2] });
  assert.equal(cleared.status, 200);
  assert.ok(cleared.body.seq > 0);
  const seen = await change;
  stop.abort();
  assert.ok(seen.seq >= cleared.body.seq);
  await waitForRun(stack.nats, runId, undefined, cleared.body.seq);
  await stack.projector.waitFor(await lastSeq());
  const again = await api(`/api/runs/${runId}/tasks/add/instances/2`);
  assert.deepEqual({ state: again.body.state, tries: again.body.tries }, { state: "success", tries: 2 });
});

test("trigger checks conf against the DAG and starts a run", async () => {
  const started = await postJson("/api/dags/sample_repeated_mapping/trigger", { conf: {} });
  assert.equal(started.status, 200);
  assert.match(started.body.runId, /^[0-9A-Z]{26}$/);
  const state = await waitForRun(stack.nats, started.body.runId);
  assert.equal(state.state, "success");
  const notObject = await postJson("/api/dags/sample_repeated_mapping/trigger", { conf: [1] });
  assert.equal(notObject.status, 400);
  const unknown = await postJson("/api/dags/no_such_dag/trigger", {});
  assert.equal(unknown.status, 400);
  assert.match(unknown.body.error, /not registered/);
});

test("pause sets a DAG's paused state, which the DAG list then shows", async () => {
  const paused = await postJson("/api/dags/sample_repeated_mapping/pause", { paused: true });
  assert.deepEqual([paused.status, paused.body], [200, { dagId: "sample_repeated_mapping", paused: true, changed: true }]);
  await stack.projector.waitFor(await lastSeq());
  const listed = (await api("/api/dags")).body as { dagId: string; paused: boolean }[];
  assert.equal(listed.find((d) => d.dagId === "sample_repeated_mapping")!.paused, true);
  assert.equal((await postJson("/api/dags/sample_repeated_mapping/pause", { paused: false })).body.changed, true);
  const bad = await postJson("/api/dags/sample_repeated_mapping/pause", { paused: "yes" });
  assert.equal(bad.status, 400);
  assert.match(bad.body.error, /send \{ "paused": true \}/);
});

test("a UI on a port already taken says so and what to do", async () => {
  const port = Number(new URL(base).port);
  await assert.rejects(
    startUi({ nats: stack.nats, dbPath: join(dir.path, "mapflow.sqlite"), log: createLogger("test", "warn"), port }),
    (err: Error) => err instanceof BadInputError && /port \d+ on 127\.0\.0\.1 is in use.*0 for any free one/.test(err.message),
  );
});

test("'mapflow ui' beside a stack runs its own projector and serves the same runs", async () => {
  const data = tempDir("mapflow-ui-cli-");
  const ui = await startCli(["ui", "--nats", stack.url, "--credentials", stack.server.credentialsFile, "--data", data.path, "--port", "0"], /ui ready at (http:\S+)/);
  try {
    const url = /ui ready at (http:\S+)/.exec(ui.output())![1]!;
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
    // Its projector folds the log from the start; the run shows up once it has.
    const deadline = Date.now() + 30_000;
    let runs: { runId: string }[] = [];
    while (!runs.some((r) => r.runId === runId) && Date.now() < deadline) {
      runs = (await (await fetch(`${url}/api/runs`)).json()) as { runId: string }[];
      if (!runs.some((r) => r.runId === runId)) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(runs.some((r) => r.runId === runId), "the run the stack ran is listed");
  } finally {
    ui.kill("SIGTERM");
    await new Promise((r) => ui.once("exit", r));
    data.remove();
  }
});
