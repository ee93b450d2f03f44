// DAG versions: each run keeps the graph it ran with, so a past run shows it after the DAG file changed or went away.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadDags, pickDag, type DagBag } from "../libs/dags/index.ts";
import { createLogger } from "../libs/log/index.ts";
import { readRecords } from "../libs/nats/index.ts";
import { ReadQueries } from "../libs/store/queries.ts";
import { startStack, type Stack } from "../services/stack/index.ts";
import { startWorker, type Worker } from "../services/worker/index.ts";
import { requestRun, waitForRun } from "../services/cli/runs.ts";
import { replayToFile } from "../services/audit/replay.ts";
import { bearer, tempDir } from "./helpers/index.ts";

const dir = tempDir();
const log = createLogger("test", "warn");
let stack: Stack;
let worker: Worker | undefined;
const runs: { v1: string; v2: string } = { v1: "", v2: "" };

/** A DAG file `model` with the given tasks in a folder of its own. */
async function version(name: string, tasks: string[]): Promise<DagBag> {
  const folder = join(dir.path, name);
  mkdirSync(folder);
  const body = tasks.map((t, i) => `  const t${i} = task("${t}", () => ${i})({});`).join("\n");
  writeFileSync(join(folder, "model.ts"), `import { dag, task } from "mapflow";\nexport default dag({ id: "model" }, () => {\n${body}\n});\n`);
  return loadDags(folder);
}

async function run(bag: DagBag): Promise<string> {
  const { version: v, dag } = pickDag(bag, "model");
  const runId = await requestRun(stack.nats, { dagId: "model", version: v, spec: dag.spec, conf: {} });
  assert.equal((await waitForRun(stack.nats, runId)).state, "success");
  return runId;
}

before(async () => {
  const v1 = await version("v1", ["train"]);
  stack = await startStack({ dataDir: join(dir.path, "data"), bag: v1, log, ui: { port: 0 }, workers: 0 });
  worker = await startWorker({ nats: stack.nats, log, bag: v1 });
  runs.v1 = await run(v1);
  // A deploy: the DAG file changes (a new task), the old file is deleted, and a worker with the new one replaces the old.
  const v2 = await version("v2", ["train", "evaluate"]);
  rmSync(join(dir.path, "v1"), { recursive: true });
  await worker.stop();
  worker = await startWorker({ nats: stack.nats, log, bag: v2 });
  runs.v2 = await run(v2);
  const last = (await stack.nats.jsm.streams.info("MF_EVENTS")).state.last_seq;
  await stack.projector.waitFor(last);
});

after(async () => {
  await worker?.stop();
  await stack?.stop();
  dir.remove();
});

const taskIds = (spec: { readonly tasks: readonly { id: string }[] } | undefined) => spec?.tasks.map((t) => t.id);

test("the UI shows each run with the graph it ran with, and the DAG with its latest", async () => {
  const api = async (path: string) => (await fetch(`${stack.ui!.url}${path}`, { headers: bearer(stack.ui!.token.value) })).json() as Promise<{ spec: { tasks: { id: string }[] }; version: string; dagVersion: string }>;
  const first = await api(`/api/runs/${runs.v1}`);
  const latest = await api(`/api/runs/${runs.v2}`);
  assert.deepEqual(taskIds(first.spec), ["train"]);
  assert.deepEqual(taskIds(latest.spec), ["train", "evaluate"]);
  assert.notEqual(first.dagVersion, latest.dagVersion);
  const dag = await api("/api/dags/model");
  assert.equal(dag.version, latest.dagVersion);
});

test("a replay of the log keeps every version's graph", async () => {
  const out = join(dir.path, "replayed.sqlite");
  await replayToFile(readRecords(stack.nats), out);
  const queries = new ReadQueries(out);
  try {
    const [a, b] = [queries.run(runs.v1)!, queries.run(runs.v2)!];
    assert.deepEqual(taskIds(queries.specOf(a.dagId, a.dagVersion)), ["train"]);
    assert.deepEqual(taskIds(queries.specOf(b.dagId, b.dagVersion)), ["train", "evaluate"]);
  } finally {
    queries.close();
  }
});
