// `mapflow dags list | show | pause | unpause` against a standalone stack, through its data dir and through --nats alone.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ReadQueries } from "../libs/store/queries.ts";
import { cli, FIXTURES, startCli, stopProcess, tempDir } from "./helpers/index.ts";

const DAGS = join(FIXTURES, "listing");
const dir = tempDir();
let standalone: Awaited<ReturnType<typeof startCli>>;

before(async () => {
  standalone = await startCli(["standalone", "--dags", DAGS, "--data", dir.path, "--no-ui"], /mapflow standalone: NATS at/);
});

after(async () => {
  if (standalone) await stopProcess(standalone, "SIGINT");
  dir.remove();
});

async function mapflow(...args: string[]): Promise<string> {
  const { code, stdout, stderr } = await cli([...args, "--data", dir.path]);
  assert.equal(code, 0, `mapflow ${args.join(" ")}: ${stderr}`);
  return stdout;
}

test("dags list --json: every DAG with its schedule, pause state, version, task count and last run", async () => {
  const before = JSON.parse(await mapflow("dags", "list", "--json")) as Record<string, unknown>[];
  assert.deepEqual(before.map((d) => ({ ...d, version: typeof d["version"] })), [
    { dagId: "mapped_chain", version: "string", schedule: null, paused: false, tasks: 3, lastRun: null },
    { dagId: "nightly", version: "string", schedule: "0 3 * * *", paused: false, tasks: 1, lastRun: null },
  ]);

  await mapflow("trigger", "mapped_chain");
  const newest = JSON.parse(await mapflow("trigger", "mapped_chain", "--wait", "--json")) as { runId: string };
  const rows = JSON.parse(await mapflow("dags", "list", "--json")) as { dagId: string; lastRun: { runId: string; state: string; runType: string; logicalDate: string } | null }[];
  const last = rows.find((r) => r.dagId === "mapped_chain")!.lastRun!;
  assert.equal(last.runId, newest.runId, "the last run is the newest one");
  assert.equal(last.state, "success");
  assert.equal(last.runType, "manual");
  assert.match(last.logicalDate, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);

  const text = await mapflow("dags", "list");
  assert.match(text, /^dag\s+schedule\s+paused\s+version\s+tasks\s+last run$/m);
  assert.match(text, /^mapped_chain\s+-\s+no\s+[0-9a-f]{16}\s+3\s+success\s+\S+Z\s+\S+$/m);
  assert.match(text, /^nightly\s+0 3 \* \* \*\s+no\s+[0-9a-f]{16}\s+1\s+-$/m);
});

test("dags show prints the graph in order, a mapped task as 'name [ ]', each with its upstreams", async () => {
  const text = await mapflow("dags", "show", "mapped_chain");
  assert.deepEqual(text.trimEnd().split("\n"), [
    text.split("\n")[0]!,
    "  a",
    "  b [ ]  <- a",
    "  c      <- b [ ]",
  ]);
  assert.match(text.split("\n")[0]!, /^mapped_chain {2}version [0-9a-f]{16} {2}manual runs only {2}unpaused$/);
  assert.match(await mapflow("dags", "show", "nightly"), /^nightly {2}version [0-9a-f]{16} {2}schedule 0 3 \* \* \* \(UTC\) from 2099-01-01 {2}unpaused\n {2}report\n$/);

  const shown = JSON.parse(await mapflow("dags", "show", "mapped_chain", "--json"));
  assert.deepEqual({ ...shown, version: typeof shown.version, registeredAt: typeof shown.registeredAt }, {
    dagId: "mapped_chain", version: "string", description: null, schedule: null, startDate: null, catchup: false, maxActiveRuns: null,
    paused: false, registeredAt: "string",
    tasks: [
      { taskId: "a", label: "a", mapped: false, operator: "function", group: null, upstream: [] },
      { taskId: "b", label: "b [ ]", mapped: true, operator: "function", group: null, upstream: ["a"] },
      { taskId: "c", label: "c", mapped: false, operator: "function", group: null, upstream: ["b"] },
    ],
  });
  const nightly = JSON.parse(await mapflow("dags", "show", "nightly", "--json"));
  assert.deepEqual([nightly.schedule, nightly.startDate, nightly.catchup, nightly.maxActiveRuns], ["0 3 * * *", "2099-01-01", false, 1]);
});

test("dags pause / unpause append the change once, and list, show and the read model show it", async () => {
  assert.equal(await mapflow("dags", "pause", "nightly"), "paused DAG nightly\n");
  assert.deepEqual(JSON.parse(await mapflow("dags", "pause", "nightly", "--json")), { dagId: "nightly", paused: true, changed: false });
  assert.match(await mapflow("dags", "list"), /^nightly\s+0 3 \* \* \*\s+yes\s/m);
  assert.match((await mapflow("dags", "show", "nightly")).split("\n")[0]!, / paused$/);

  // Through --nats alone: no data dir, no read model.
  const { url, credentialsFile } = JSON.parse(readFileSync(join(dir.path, "stack.json"), "utf8")) as { url: string; credentialsFile: string };
  const viaNats = await cli(["dags", "list", "--json", "--nats", url, "--credentials", credentialsFile, "--data", join(dir.path, "nowhere")]);
  assert.equal(viaNats.code, 0, viaNats.stderr);
  assert.equal((JSON.parse(viaNats.stdout) as { dagId: string; paused: boolean }[]).find((d) => d.dagId === "nightly")!.paused, true);

  // The projector folds it into the dags table (what the UI shows).
  const queries = new ReadQueries(join(dir.path, "mapflow.sqlite"));
  try {
    for (const deadline = Date.now() + 10_000; !queries.dag("nightly")?.paused && Date.now() < deadline;) await new Promise((r) => setTimeout(r, 100));
    assert.equal(queries.dag("nightly")?.paused, true);
    assert.deepEqual(JSON.parse(await mapflow("dags", "unpause", "nightly", "--json")), { dagId: "nightly", paused: false, changed: true });
    for (const deadline = Date.now() + 10_000; queries.dag("nightly")?.paused && Date.now() < deadline;) await new Promise((r) => setTimeout(r, 100));
    assert.equal(queries.dag("nightly")?.paused, false);
  } finally {
    queries.close();
  }
  assert.equal(await mapflow("dags", "unpause", "nightly"), "DAG nightly was already unpaused\n");
});

test("dags commands say what is wrong with a DAG the stack does not have", async () => {
  const pause = await cli(["dags", "pause", "no_such_dag", "--data", dir.path]);
  assert.equal(pause.code, 2);
  assert.match(pause.stderr, /DAG 'no_such_dag' is not registered on this stack; start a worker whose --dags folder holds it/);
  const show = await cli(["dags", "show", "no_such_dag", "--data", dir.path]);
  assert.equal(show.code, 2);
  assert.match(show.stderr, /DAG 'no_such_dag' is not registered on this stack; 'mapflow dags list' shows the ones that are/);
  const badId = await cli(["dags", "show", "a.b", "--data", dir.path]);
  assert.equal(badId.code, 2);
  assert.match(badId.stderr, /'a\.b' is not a valid DAG id/);
});
