// The web UI's JSON API and live stream on a real stack: what the screens read, and the actions they take.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { loadDags, pickDag, type DagBag } from "../libs/dags/index.ts";
import { createLogger } from "../libs/log/index.ts";
import { startStack, type Stack } from "../services/stack/index.ts";
import { requestRun, waitForRun } from "../services/cli/runs.ts";
import { bearer, printedToken, ROOT, startCli, stopProcess, tempDir } from "./helpers/index.ts";
import { startUi } from "../services/ui/index.ts";
import { ApiGate, apiToken, SIGNED_LINK_MS, TOKEN_ENV } from "../services/ui/auth.ts";
import { BadInputError } from "../libs/errors.ts";

const dir = tempDir();
let stack: Stack;
let bag: DagBag;
let base: string;
let runId: string;

/** A call with the stack's token, unless `init` sets its own authorization (or none, with `authorization: ""`). */
async function api(path: string, init: RequestInit & { headers?: Record<string, string> } = {}, at = base): Promise<{ status: number; body: any; headers: Headers }> {
  const headers = Object.fromEntries(Object.entries({ ...bearer(stack.ui!.token.value), ...init.headers }).filter(([, v]) => v !== ""));
  // A stream answered where a refusal was due would never end: the timeout turns that into a failure.
  const res = await fetch(`${at}${path}`, { signal: AbortSignal.timeout(20_000), ...init, headers });
  return { status: res.status, body: await res.json(), headers: res.headers };
}
const postJson = (path: string, body: unknown, headers: Record<string, string> = {}, at = base) =>
  api(path, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) }, at);

/** Resolves with the first `change` message of the live stream that names `runId`. */
async function nextChange(run: string, signal: AbortSignal): Promise<{ seq: number; runs: { runId: string; state: string }[] }> {
  const res = await fetch(`${base}/api/live`, { signal, headers: bearer(stack.ui!.token.value) });
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
  // The page holds no data and needs no token; another site may not frame it and steer its clicks.
  assert.equal(page.headers.get("x-frame-options"), "DENY");
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
  // An instance the read model does not have is a 404, not an empty list that reads as "it never logged".
  for (const path of [`/api/runs/01JDXYZABCDEFGHJKMNPQRSTVW/tasks/add/instances/0/logs`, `/api/runs/${runId}/tasks/add/instances/99/logs`, `/api/runs/${runId}/tasks/nope/instances/0/logs`]) {
    const missing = await api(path);
    assert.equal(missing.status, 404, path);
    assert.match(missing.body.error, /has no instance/);
  }
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
  assert.equal((await api("/api/live", { method: "POST" })).status, 405, "the live stream is known, under GET only");
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
  const noIndexes = await postJson(`/api/runs/${runId}/clear`, { taskId: "add", mapIndexes: [] });
  assert.equal(noIndexes.status, 400);
  assert.match(noIndexes.body.error, /mapIndexes is empty/);
  const noState = await postJson(`/api/runs/${runId}/mark`, { taskId: "add", mapIndex: 0 });
  assert.equal(noState.status, 400);
  assert.match(noState.body.error, /state \("success" or "failed"\) are required/);
  // A malformed escape in the path is the client's error (it once threw outside the handler and stopped the server).
  const badEscape = await api("/api/runs/%E0");
  assert.equal(badEscape.status, 400);
  assert.match(badEscape.body.error, /not valid percent-encoding/);
  assert.equal((await api(`/api/runs/${runId}`)).status, 200, "the server is still up");
  // A negative limit would lift the page's cap (SQLite's LIMIT -1 is none).
  const negative = await api("/api/runs?limit=-1");
  assert.equal(negative.status, 400);
  assert.match(negative.body.error, /'limit' must be a whole number ≥ 1, got '-1'/);
  const big = await api(`/api/dags/sample_repeated_mapping/trigger`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ conf: { x: "y".repeat(1_100_000) } }) });
  assert.equal(big.status, 400);
  assert.match(big.body.error, /over 1048576 bytes/);
  // An action that reads nothing from its body still wants a JSON one, so no form can post it.
  const formCancel = await api(`/api/runs/${runId}/cancel`, { method: "POST", headers: { "content-type": "text/plain" }, body: "{}" });
  assert.equal(formCancel.status, 400);
  assert.match(formCancel.body.error, /content-type application\/json/);
  // No GET changes anything: the actions' paths answer GET with 405.
  for (const path of [`/api/runs/${runId}/cancel`, `/api/runs/${runId}/clear`, `/api/runs/${runId}/mark`, "/api/dags/sample_repeated_mapping/trigger", "/api/dags/sample_repeated_mapping/pause"]) {
    assert.equal((await api(path)).status, 405, path);
  }
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
    startUi({ nats: stack.nats, dbPath: join(dir.path, "mapflow.sqlite"), log: createLogger("test", "warn"), port, token: stack.ui!.token }),
    (err: Error) => err instanceof BadInputError && /port \d+ on 127\.0\.0\.1 is in use.*0 for any free one/.test(err.message),
  );
});

const NO_TOKEN = { authorization: "" };
const WRONG_TOKEN = bearer("not-the-token-of-this-ui");

test("without the token, or with a wrong one, reads and actions answer 401 saying what to do, and change nothing", async () => {
  const before = await lastSeq();
  const requests: [string, string][] = [
    ["GET", "/api/dags"], ["GET", `/api/runs/${runId}`], ["GET", `/api/runs/${runId}/history`], ["GET", "/api/live"], ["GET", "/api/nothing"],
    ["POST", "/api/dags/sample_repeated_mapping/trigger"], ["POST", `/api/runs/${runId}/clear`], ["POST", "/api/dags/sample_repeated_mapping/pause"],
  ];
  for (const [method, path] of requests) {
    const body = method === "POST" ? JSON.stringify({ conf: {}, taskId: "add", paused: true }) : undefined;
    const none = await api(path, { method, body, headers: { ...NO_TOKEN, "content-type": "application/json" } });
    assert.equal(none.status, 401, `${method} ${path} without a token`);
    assert.match(none.body.error, /send the header 'Authorization: Bearer <token>'.*printed as a link when the UI first started.*'api-token' in the UI's data dir.*MAPFLOW_API_TOKEN/);
    assert.equal(none.headers.get("www-authenticate"), 'Bearer realm="mapflow"');
    const wrong = await api(path, { method, body, headers: { ...WRONG_TOKEN, "content-type": "application/json" } });
    assert.equal(wrong.status, 401, `${method} ${path} with a wrong token`);
    assert.match(wrong.body.error, /not this UI's API token/);
    const basic = await api(path, { method, body, headers: { authorization: `Basic ${Buffer.from(`u:${stack.ui!.token.value}`).toString("base64")}` } });
    assert.equal(basic.status, 401, `${method} ${path} with Basic`);
    assert.match(basic.body.error, /send the token as 'Authorization: Bearer <token>'/);
  }
  assert.equal(await lastSeq(), before, "no refused action appended an event");
  // A token in the query string is no token: it would end up in logs.
  assert.equal((await api(`/api/dags?token=${stack.ui!.token.value}`, { headers: NO_TOKEN })).status, 401);
});

test("with --public-read, reads need no token and actions still do; a trigger with the token works", async () => {
  const open = await startUi({ nats: stack.nats, dbPath: join(dir.path, "mapflow.sqlite"), log: createLogger("test", "warn"), port: 0, token: stack.ui!.token, publicRead: true });
  try {
    const dags = await api("/api/dags", { headers: NO_TOKEN }, open.url);
    assert.equal(dags.status, 200);
    assert.ok(dags.body.some((d: { dagId: string }) => d.dagId === "sample_repeated_mapping"));
    assert.equal((await api(`/api/runs/${runId}`, { headers: NO_TOKEN }, open.url)).body.runId, runId);
    const stop = new AbortController();
    const live = await fetch(`${open.url}/api/live`, { signal: stop.signal });
    assert.deepEqual([live.status, live.headers.get("content-type")], [200, "text/event-stream"]);
    stop.abort();
    const before = await lastSeq();
    assert.equal((await postJson("/api/dags/sample_repeated_mapping/trigger", { conf: {} }, NO_TOKEN, open.url)).status, 401);
    assert.equal((await postJson("/api/dags/sample_repeated_mapping/trigger", { conf: {} }, WRONG_TOKEN, open.url)).status, 401);
    assert.equal((await postJson(`/api/runs/${runId}/cancel`, {}, NO_TOKEN, open.url)).status, 401);
    assert.equal(await lastSeq(), before, "the refused actions appended nothing");
    const started = await postJson("/api/dags/sample_repeated_mapping/trigger", { conf: {} }, {}, open.url);
    assert.equal(started.status, 200);
    assert.equal((await waitForRun(stack.nats, started.body.runId)).state, "success");
  } finally {
    await open.stop();
  }
});

test("the token file is made on the first start with mode 0600 and reused after; MAPFLOW_API_TOKEN takes its place", () => {
  const file = join(dir.path, "api-token");
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.deepEqual({ ...stack.ui!.token }, { value: readFileSync(file, "utf8").trim(), source: "new", file });
  assert.match(stack.ui!.token.value, /^[\w-]{43}$/, "32 random bytes, base64url");
  const log = createLogger("test", "warn");
  assert.deepEqual({ ...apiToken(dir.path, log) }, { value: stack.ui!.token.value, source: "file", file });
  const other = tempDir();
  try {
    assert.deepEqual({ ...apiToken(other.path, log, { [TOKEN_ENV]: "set-by-the-operator-1234" }) }, { value: "set-by-the-operator-1234", source: "env" });
    assert.throws(() => statSync(join(other.path, "api-token")), /ENOENT/, "a token from the environment writes no file");
    assert.throws(() => apiToken(other.path, log, { [TOKEN_ENV]: "short" }), (err: Error) => err instanceof BadInputError && /MAPFLOW_API_TOKEN must be 16 to 512 printable characters/.test(err.message));
    assert.equal(apiToken(other.path, log, { [TOKEN_ENV]: "" }).source, "new", "an empty MAPFLOW_API_TOKEN counts as unset");
  } finally {
    other.remove();
  }
});

test("a signed link opens its one path without the header, and only until it expires", async () => {
  const gate = new ApiGate(stack.ui!.token, false);
  const path = `/api/runs/${runId}`;
  assert.equal((await api(gate.sign(path), { headers: NO_TOKEN })).body.runId, runId);
  const [, query] = gate.sign(path).split("?");
  assert.equal((await api(`/api/runs?${query}`, { headers: NO_TOKEN })).status, 401, "another path with the same signature");
  const expired = await api(gate.sign(path, Date.now() - SIGNED_LINK_MS - 1000), { headers: NO_TOKEN });
  assert.equal(expired.status, 401);
  assert.match(expired.body.error, /expired; reload the page/);
  const forged = await api(`${path}?exp=${Date.now() + 60_000}&sig=${"A".repeat(43)}`, { headers: NO_TOKEN });
  assert.equal(forged.status, 401);
  assert.match(forged.body.error, /signature does not match/);
  const signedPost = await postJson(gate.sign(`/api/runs/${runId}/cancel`), {}, NO_TOKEN);
  assert.equal(signedPost.status, 401, "a signature opens reads only");
});

test("'mapflow ui' beside a stack runs its own projector, prints its token once, and serves the same runs", async () => {
  const data = tempDir("mapflow-ui-cli-");
  const ready = /ui ready at (http:\S+)\n(?:.*\n)*?.*api-token/;
  let ui = await startCli(["ui", "--nats", stack.url, "--credentials", stack.server.credentialsFile, "--data", data.path, "--port", "0"], ready);
  try {
    const url = /ui ready at (http:\S+)/.exec(ui.output())![1]!;
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
    // The first start prints a link that signs in, and keeps the token in the data dir.
    assert.match(ui.output(), new RegExp(`open ${url}/#token=[\\w-]{43} to sign in`));
    const token = printedToken(ui.output());
    assert.equal(readFileSync(join(data.path, "api-token"), "utf8").trim(), token);
    assert.equal((await api("/api/runs", { headers: NO_TOKEN }, url)).status, 401);
    // Its projector folds the log from the start; the run shows up once it has.
    const deadline = Date.now() + 30_000;
    let runs: { runId: string }[] = [];
    while (!runs.some((r) => r.runId === runId) && Date.now() < deadline) {
      runs = (await api("/api/runs", { headers: bearer(token) }, url)).body as { runId: string }[];
      if (!runs.some((r) => r.runId === runId)) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(runs.some((r) => r.runId === runId), "the run the stack ran is listed");
    await stopProcess(ui);

    // Started again on that data dir, with --public-read: the same token, named by its file and not printed.
    ui = await startCli(["ui", "--nats", stack.url, "--credentials", stack.server.credentialsFile, "--data", data.path, "--port", "0", "--public-read"], ready);
    const again = /ui ready at (http:\S+)/.exec(ui.output())![1]!;
    assert.doesNotMatch(ui.output(), new RegExp(token));
    assert.match(ui.output(), new RegExp(`the API token is in ${join(data.path, "api-token")}`));
    assert.equal((await api("/api/dags", { headers: NO_TOKEN }, again)).status, 200);
    assert.equal((await postJson(`/api/runs/${runId}/cancel`, {}, NO_TOKEN, again)).status, 401);
    assert.equal((await postJson(`/api/runs/${runId}/cancel`, {}, bearer(token), again)).status, 400, "with the token the cancel is checked (the run has ended)");
  } finally {
    await stopProcess(ui);
    data.remove();
  }
});
