// `mapflow runs list`, `tasks` and `logs` on a standalone stack: from its projection (--data) and from the log alone
// (--nats), which must agree; `logs --follow` until a try ends; exit 3 naming the NATS tried.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { cli, FIXTURES, startCli, stopProcess, tempDir } from "./helpers/index.ts";
import { TICKS } from "./fixtures/reads/ticker.ts";

const DAGS = join(FIXTURES, "reads");
const dir = tempDir();
let standalone: Awaited<ReturnType<typeof startCli>>;
/** The same stack named by --nats alone: no projection at hand, so the commands read the log. */
let viaLog: string[];

before(async () => {
  standalone = await startCli(["standalone", "--dags", DAGS, "--data", dir.path, "--no-ui"], /mapflow standalone: NATS at/);
  const { url, credentialsFile } = JSON.parse(readFileSync(join(dir.path, "stack.json"), "utf8")) as { url: string; credentialsFile: string };
  viaLog = ["--nats", url, "--credentials", credentialsFile];
});

after(async () => {
  if (standalone) await stopProcess(standalone, "SIGINT");
  dir.remove();
});

async function mapflow(args: string[], stack = ["--data", dir.path]): Promise<string> {
  const { code, stdout, stderr } = await cli([...args, ...stack]);
  assert.equal(code, 0, `mapflow ${args.join(" ")} exited ${code}: ${stderr}`);
  return stdout;
}

const json = async <T>(args: string[], stack?: string[]) => JSON.parse(await mapflow([...args, "--json"], stack)) as T;

type RunRow = { runId: string; dagId: string; state: string; startedAt: number; endedAt: number | null };
type TaskRow = { taskId: string; label: string; state: string; mapped: boolean; mapCount: number | null; counts: Record<string, number> };
type RunTasks = RunRow & { tasks: TaskRow[] };

/** Waits until the projection has folded the run to its end (the projector follows the log a moment behind). */
async function projected(runId: string): Promise<RunTasks> {
  for (const deadline = Date.now() + 15_000; ; await new Promise((r) => setTimeout(r, 200))) {
    const rows = await json<RunRow[]>(["runs", "list", "--limit", "500"]);
    const row = rows.find((r) => r.runId === runId);
    if (row?.endedAt !== null && row !== undefined) return json<RunTasks>(["tasks", runId]);
    if (Date.now() > deadline) assert.fail(`the projection never showed run ${runId} ended: ${JSON.stringify(row)}`);
  }
}

async function trigger(dagId: string, wait: boolean): Promise<string> {
  const { code, stdout, stderr } = await cli(["trigger", dagId, "--json", ...(wait ? ["--wait"] : []), "--data", dir.path]);
  assert.ok(code === 0 || (wait && code === 1), `trigger ${dagId}: exit ${code} ${stderr}`);
  return (JSON.parse(stdout) as { runId: string }).runId;
}

test("runs list and tasks: newest first, filtered; mapped tasks as 'add [6]' with counts per state; the projection and the log agree", async () => {
  const failed = await trigger("reads", true);
  const ticked = await trigger("ticker", true);
  const tasks = await projected(failed);
  await projected(ticked);

  assert.equal(tasks.state, "failed");
  assert.deepEqual(tasks.tasks.map((t) => [t.label, t.state, t.counts]), [
    ["add [6]", "failed", { success: 5, failed: 1 }],
    ["total", "upstream_failed", {}],
    ["double [ ]", "upstream_failed", {}],
    ["report", "success", { success: 1 }],
  ]);
  assert.equal(tasks.tasks.find((t) => t.taskId === "double")!.mapCount, null, "never expanded");
  const text = await mapflow(["tasks", failed]);
  assert.match(text, new RegExp(`^run ${failed} of reads: failed in \\S+ m?s\\n`));
  assert.match(text, /^ {2}task {8}state {12}instances {2}took$/m);
  assert.match(text, /^ {2}add \[6\] {5}failed {11}5 ✓ 1 ✗ {4}\S+ m?s$/m);
  assert.match(text, /^ {2}double \[ \] {2}upstream_failed$/m);

  const all = await json<RunRow[]>(["runs", "list"]);
  assert.deepEqual(all.slice(0, 2).map((r) => [r.runId, r.dagId, r.state]), [[ticked, "ticker", "success"], [failed, "reads", "failed"]], "newest first");
  assert.deepEqual((await json<RunRow[]>(["runs", "list", "--dag", "reads"])).map((r) => r.runId), [failed]);
  assert.deepEqual((await json<RunRow[]>(["runs", "list", "--state", "success"])).map((r) => r.runId), [ticked]);
  assert.deepEqual((await json<RunRow[]>(["runs", "list", "--limit", "1"])).map((r) => r.runId), [ticked]);
  assert.match(await mapflow(["runs", "list"]), new RegExp(`^dag {5}run {25}state {4}started {19}took\\nticker {2}${ticked} {2}success {2}\\S+Z {2}\\S+ m?s\\nreads {3}${failed} {2}failed`));
  assert.match(await mapflow(["runs", "list", "--dag", "reads", "--state", "running"]), /^no runs of DAG reads in state running\n$/);

  // Without the projection, folded from the log: the same rows.
  assert.deepEqual(await json(["tasks", failed], viaLog), tasks);
  for (const filter of [[], ["--dag", "reads"], ["--state", "success"], ["--limit", "1"]]) {
    assert.deepEqual(await json(["runs", "list", ...filter], viaLog), await json(["runs", "list", ...filter]), `runs list ${filter.join(" ")}`);
  }

  for (const [args, message] of [
    [["runs", "list", "--state", "done"], /--state takes a run state: queued, running, success, failed, cancelled; got 'done'/],
    [["runs", "list", "--limit", "0"], /--limit takes a whole number from 1 to 500, got '0'/],
    [["runs", "list", "--dag", "nope"], /DAG 'nope' is not registered on this stack/],
    [["tasks", "01NOSUCHRUN"], /run '01NOSUCHRUN' is not in the log of this stack/],
  ] as const) {
    for (const stack of [["--data", dir.path], viaLog]) {
      const bad = await cli([...args, ...stack]);
      assert.equal(bad.code, 2, `${args.join(" ")} ${stack[0]}: ${bad.stderr}`);
      assert.match(bad.stderr, message);
    }
  }
});

type LogRow = { runId: string; taskId: string; mapIndex: number; try: number; at: number; level: string; msg: string; fields?: Record<string, unknown> };

const ndjson = (text: string) => text.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l) as LogRow);

test("logs: a try's ctx.log lines, the latest try by default; a mapped task wants --map-index", async () => {
  const runId = await trigger("reads", true);
  const latest = ndjson(await mapflow(["logs", runId, "add", "--map-index", "5", "--json"]));
  assert.deepEqual(latest.map((l) => [l.taskId, l.mapIndex, l.try, l.level, l.msg, l.fields]), [
    ["add", 5, 2, "info", "adding one", { x: 6 }],
    ["add", 5, 2, "error", "six is one too many (try 2)", undefined],
  ]);
  const first = ndjson(await mapflow(["logs", runId, "add", "--map-index", "5", "--try", "1", "--json"]));
  assert.deepEqual(first.map((l) => l.msg), ["adding one", "six is one too many (try 1)"]);
  assert.ok(first.every((l) => l.try === 1 && l.runId === runId));

  const text = await cli(["logs", runId, "add", "--map-index", "5", "--data", dir.path]);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO {2}adding one \{"x":6\}\n\S+Z ERROR six is one too many \(try 2\)\n$/);
  assert.match(text.stderr, /add\[5\] try 2, the latest; --try 1 to 1 show the earlier ones/);
  assert.match(await mapflow(["logs", runId, "report"]), /^\S+Z WARN {2}writing the report\n$/);

  for (const [args, message] of [
    [["logs", runId, "add"], /task 'add' is mapped; say which instance with --map-index N \(its map indexes: 0…5\)/],
    [["logs", runId, "add", "--map-index", "6"], /has no instance with map index 6; its map indexes: 0…5/],
    [["logs", runId, "add", "--map-index", "0", "--try", "2"], /add\[0\] of run \S+ has had 1 try; --try takes 1 to 1/],
    [["logs", runId, "report", "--map-index", "2"], /task 'report' is not mapped/],
    [["logs", runId, "nope"], /has no task 'nope'; its tasks: add, total, double, report/],
  ] as const) {
    const bad = await cli([...args, "--data", dir.path]);
    assert.equal(bad.code, 2, `${args.join(" ")}: ${bad.stderr}`);
    assert.match(bad.stderr, message);
  }
  const none = await cli(["logs", runId, "total", "--data", dir.path]);
  assert.equal(none.code, 0, none.stderr);
  assert.equal(none.stdout, "");
  assert.match(none.stderr, /task 'total' of run \S+ did not run \(upstream_failed\), so it wrote no lines/);
});

test("logs --follow prints a running try's lines as they come and returns when the try ends", async () => {
  const runId = await trigger("ticker", false);
  // The first tick is stored while the task runs; the task then logs for about two seconds more.
  for (const deadline = Date.now() + 15_000; ; await new Promise((r) => setTimeout(r, 100))) {
    const lines = ndjson((await cli(["logs", runId, "tick", "--json", "--data", dir.path])).stdout);
    if (lines.length > 0) break;
    if (Date.now() > deadline) assert.fail("the tick task never logged");
  }
  const { code, stdout, stderr } = await cli(["logs", runId, "tick", "--follow", "--json", "--data", dir.path]);
  assert.equal(code, 0, stderr);
  const lines = ndjson(stdout);
  assert.deepEqual(lines.map((l) => l.msg), Array.from({ length: TICKS }, (_, i) => `tick ${i + 1}`), "every line, once, in order");
  assert.ok(lines.every((l, i) => i === 0 || l.at >= lines[i - 1]!.at));
  const done = await json<RunTasks>(["tasks", runId], viaLog);
  assert.equal(done.tasks.find((t) => t.taskId === "tick")!.state, "success", "it returned once the try had ended");
  // A finished try: --follow prints it and returns at once.
  assert.deepEqual(ndjson(await mapflow(["logs", runId, "tick", "--follow", "--json"])).map((l) => l.msg), lines.map((l) => l.msg));
});

/** A port nothing listens on: one the system handed out and took back. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

test("the read commands exit 3 when NATS cannot be reached, naming the URL tried and what to check", async () => {
  const url = `nats://127.0.0.1:${await closedPort()}`;
  const reads = [["runs", "list"], ["tasks", "01RUN"], ["logs", "01RUN", "add"], ["dags", "list"], ["workers"], ["events", "01RUN"], ["artifacts", "01RUN"]];
  const results = await Promise.all(reads.map((args) => cli([...args, "--nats", url])));
  results.forEach(({ code, stderr }, i) => {
    const name = reads[i]!.join(" ");
    assert.equal(code, 3, `${name}: ${stderr}`);
    assert.match(stderr, new RegExp(`cannot reach NATS at ${url.replaceAll(".", "\\.")}: .*Check that the stack is running \\(mapflow standalone\\) and that --nats or --data points at it`), name);
  });
});
