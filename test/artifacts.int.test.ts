// Artifacts on a real stack: stored per try by ctx.artifact, listed per run and instance by the CLI and the UI API,
// downloaded byte for byte by both, refused with clear errors that fail only their instance, and projected as a replay would.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { loadDags, pickDag, type DagBag } from "../libs/dags/index.ts";
import { runReport, type ArtifactListing, type RunState } from "../libs/core/index.ts";
import { createLogger } from "../libs/log/index.ts";
import { firstDifference } from "../libs/store/digest.ts";
import { artifactStore } from "../libs/nats/index.ts";
import { cleanRuns } from "../services/audit/clean.ts";
import { startStack, type Stack } from "../services/stack/index.ts";
import { requestRun, waitForRun } from "../services/cli/runs.ts";
import { bearer, cli, FIXTURES, tempDir } from "./helpers/index.ts";
import { replayed } from "./helpers/replay.ts";
import { binaryOf, ITEMS, noteOf } from "./fixtures/artifacts/artifacts.ts";
import { LIMIT } from "./fixtures/artifacts/refused.ts";

const dir = tempDir();
let stack: Stack;
let bag: DagBag;
let base: string;
let run: RunState;
let refused: RunState;

async function runDag(dagId: string): Promise<RunState> {
  const { version, dag } = pickDag(bag, dagId);
  return waitForRun(stack.nats, await requestRun(stack.nats, { dagId, version, spec: dag.spec, conf: {} }));
}

before(async () => {
  bag = await loadDags(join(FIXTURES, "artifacts"));
  stack = await startStack({ dataDir: dir.path, bag, log: createLogger("test", "fatal"), maxValueBytes: LIMIT, ui: { port: 0 } });
  base = stack.ui!.url;
  run = await runDag("artifacts");
  refused = await runDag("artifacts_refused");
  await stack.projector.waitFor((await stack.nats.jsm.streams.info("MF_EVENTS")).state.last_seq);
});

after(async () => {
  await stack?.stop();
  dir.remove();
});

const mapflow = (...args: string[]) => cli([...args, "--nats", stack.url, "--credentials", stack.server.credentialsFile]);
const json = async (path: string) => {
  const res = await fetch(`${base}${path}`, { headers: bearer(stack.ui!.token.value) });
  return { status: res.status, body: await res.json() };
};

/** What each artifact of the `artifacts` run holds, by task, map index, try and name. */
function expectedBytes(a: ArtifactListing): Uint8Array {
  if (a.name === "note.txt") return new TextEncoder().encode(noteOf(ITEMS[a.mapIndex]!));
  if (a.name === "data.bin") return binaryOf(a.mapIndex);
  return new TextEncoder().encode(JSON.stringify({ try: a.try }));
}

const EXPECTED = [
  ["flaky", -1, 1, "attempt.json", "application/json"],
  ["flaky", -1, 2, "attempt.json", "application/json"],
  ...ITEMS.flatMap((_, i) => [
    ["write", i, 1, "data.bin", "application/x-mapflow-test"],
    ["write", i, 1, "note.txt", "text/plain; charset=utf-8"],
  ]),
];

test("the run succeeds; the retried task failed once after writing its artifact", () => {
  const report = runReport(run);
  assert.equal(report.state, "success");
  assert.deepEqual(report.tasks["flaky"]!.instances.map((i) => i.tries), [2]);
});

test("`mapflow artifacts --json` lists every instance's files and every try's, with their types, sizes and objects", async () => {
  const { code, stdout, stderr } = await mapflow("artifacts", run.runId, "--json");
  assert.equal(code, 0, stderr);
  const listed = JSON.parse(stdout) as { runId: string; dagId: string; artifacts: ArtifactListing[] };
  assert.equal(listed.runId, run.runId);
  assert.equal(listed.dagId, "artifacts");
  assert.deepEqual(listed.artifacts.map((a) => [a.taskId, a.mapIndex, a.try, a.name, a.contentType]), EXPECTED);
  for (const a of listed.artifacts) {
    assert.deepEqual(Object.keys(a), ["taskId", "mapIndex", "try", "name", "contentType", "bytes", "object"]);
    assert.equal(a.bytes, expectedBytes(a).byteLength, `${a.taskId}[${a.mapIndex}] ${a.name}`);
    assert.ok(a.object.startsWith(`${run.runId}/${a.taskId}/${a.mapIndex}/${a.try}/`), a.object);
  }
  const firstTry = listed.artifacts.find((a) => a.taskId === "flaky" && a.try === 1)!;
  const secondTry = listed.artifacts.find((a) => a.taskId === "flaky" && a.try === 2)!;
  assert.notEqual(firstTry.object, secondTry.object, "a retry's artifact has its own object");

  const one = await mapflow("artifacts", run.runId, "--task", "write", "--map-index", "1", "--json");
  assert.deepEqual(JSON.parse(one.stdout).artifacts.map((a: ArtifactListing) => [a.mapIndex, a.name]), [[1, "data.bin"], [1, "note.txt"]]);
  const text = await mapflow("artifacts", run.runId);
  assert.match(text.stdout, new RegExp(`^run ${run.runId}: 8 artifacts\\n`));
  assert.match(text.stdout, /write\[2\]\s+#1\s+data\.bin\s+application\/x-mapflow-test\s+770 B/);
});

test("the UI API lists the same artifacts, per run and per instance, with where to download each", async () => {
  const cliList = JSON.parse((await mapflow("artifacts", run.runId, "--json")).stdout).artifacts as ArtifactListing[];
  const all = await json(`/api/runs/${run.runId}/artifacts`);
  assert.equal(all.status, 200);
  assert.deepEqual(all.body.map(({ url: _, download: __, ...a }: ArtifactListing & { url: string; download: string }) => a), cliList);
  const flaky = await json(`/api/runs/${run.runId}/artifacts?task=flaky&mapIndex=-1`);
  assert.deepEqual(flaky.body.map((a: ArtifactListing) => a.try), [1, 2]);
  assert.equal(flaky.body[1].url, `/api/runs/${run.runId}/artifacts/flaky/-1/2/attempt.json`);
  // The link a browser downloads from: the same path, signed, as a download cannot send the token header.
  assert.match(flaky.body[1].download, new RegExp(`^${flaky.body[1].url}\\?exp=\\d+&sig=[\\w-]{43}$`));
  assert.equal((await json(`/api/runs/${run.runId}/artifacts?task=write&mapIndex=7`)).body.length, 0);
});

test("each artifact downloads over HTTP byte for byte, as an attachment with its content type, with the token or by its signed link", async () => {
  const list = (await json(`/api/runs/${run.runId}/artifacts`)).body as (ArtifactListing & { url: string; download: string })[];
  assert.equal(list.length, EXPECTED.length);
  for (const a of list) {
    for (const res of [await fetch(`${base}${a.url}`, { headers: bearer(stack.ui!.token.value) }), await fetch(`${base}${a.download}`)]) {
      assert.equal(res.status, 200, a.url);
      assert.equal(res.headers.get("content-type"), a.contentType);
      assert.equal(res.headers.get("content-disposition"), `attachment; filename="${a.name}"`);
      assert.equal(res.headers.get("x-content-type-options"), "nosniff");
      assert.deepEqual(new Uint8Array(await res.arrayBuffer()), expectedBytes(a), a.url);
    }
    assert.equal((await fetch(`${base}${a.url}`)).status, 401, "the plain path wants the token");
  }
  const missing = await json(`/api/runs/${run.runId}/artifacts/write/0/1/nope.txt`);
  assert.equal(missing.status, 404);
  assert.match(missing.body.error, /has no artifact 'nope\.txt' of write\[0\] try 1/);
  assert.equal((await json(`/api/runs/${run.runId}/artifacts/write/0/x/note.txt`)).status, 400);
});

test("`mapflow artifacts get` downloads one byte for byte: an instance's, the latest try's unless --try", async () => {
  const out = join(dir.path, "data-2.bin");
  const got = await mapflow("artifacts", "get", run.runId, "write", "data.bin", "--map-index", "2", "--out", out, "--json");
  assert.equal(got.code, 0, got.stderr);
  assert.deepEqual(new Uint8Array(readFileSync(out)), binaryOf(2));
  assert.equal(JSON.parse(got.stdout).contentType, "application/x-mapflow-test");

  const latest = await mapflow("artifacts", "get", run.runId, "flaky", "attempt.json", "--out", "-");
  assert.deepEqual(JSON.parse(latest.stdout), { try: 2 });
  const first = await mapflow("artifacts", "get", run.runId, "flaky", "attempt.json", "--try", "1", "--out", "-");
  assert.deepEqual(JSON.parse(first.stdout), { try: 1 });

  const unnamed = await mapflow("artifacts", "get", run.runId, "write", "note.txt", "--out", "-");
  assert.equal(unnamed.code, 2);
  assert.match(unnamed.stderr, /task 'write' is mapped; say which instance with --map-index N/);
  const wrong = await mapflow("artifacts", "get", run.runId, "write", "nope.txt", "--map-index", "0", "--out", "-");
  assert.equal(wrong.code, 2);
  assert.match(wrong.stderr, /write\[0\] of run \w+ has no artifact 'nope\.txt'; it has: data\.bin \(try 1\), note\.txt \(try 1\)/);
});

test("a bad name and an oversized artifact fail only their own instances, saying what to change", async () => {
  const instances = refused.tasks["store"]!.instances!;
  assert.deepEqual(instances.map((i) => i.state), ["success", "failed", "failed"]);
  assert.equal(instances[1]!.error!.name, "ArtifactError");
  assert.match(instances[1]!.error!.message, /artifact name '\.\.\/escape\.txt' is not a plain file name: use letters, digits/);
  assert.equal(instances[2]!.error!.name, "ArtifactError");
  assert.match(instances[2]!.error!.message, new RegExp(`artifact 'big\\.bin' is ${LIMIT + 1} bytes, over the ${LIMIT}-byte limit for one artifact \\(MAPFLOW_MAX_VALUE_BYTES\\)`));
  // The refused writes stored nothing, and the failed tries wrote nothing else: only the instance that succeeded has a file.
  const listed = (await json(`/api/runs/${refused.runId}/artifacts`)).body as ArtifactListing[];
  assert.deepEqual(listed.map((a) => [a.mapIndex, a.name]), [[0, "fine.txt"]]);
});

test("the projection, artifacts included, equals a rebuild from the log", async () => {
  const last = (await stack.nats.jsm.streams.info("MF_EVENTS")).state.last_seq;
  await stack.projector.waitFor(last);
  const difference = await replayed(stack.nats, last, (db) => firstDifference(db, stack.projector.model.db));
  assert.equal(difference, undefined);
  const rows = stack.projector.model.db.prepare("SELECT COUNT(*) FROM artifacts").pluck().get();
  assert.equal(rows, EXPECTED.length + 1);
});

test("db clean deletes a purged run's artifacts with it", async () => {
  const store = await artifactStore(stack.nats);
  const ofRuns = async () => (await store.list()).filter((o) => o.name.startsWith(`${run.runId}/`) || o.name.startsWith(`${refused.runId}/`)).length;
  assert.equal(await ofRuns(), EXPECTED.length + 1);
  const report = await cleanRuns(stack.nats, { before: Date.now() + 60_000, archive: null, dryRun: false, dbPath: join(dir.path, "mapflow.sqlite") });
  assert.deepEqual(report.runs.map((r) => r.runId).sort(), [run.runId, refused.runId].sort());
  assert.equal(report.artifactsDeleted, EXPECTED.length + 1);
  assert.equal(await ofRuns(), 0);
  const gone = await json(`/api/runs/${run.runId}/artifacts/write/0/1/note.txt`);
  assert.equal(gone.status, 404);
});
