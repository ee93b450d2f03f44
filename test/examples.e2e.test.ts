// The three jobs users bring, end to end through `mapflow run --dags examples` and a standalone stack:
// ELT over a changing set of files, one model per customer, and the hyperparameter sweeps.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { bearer, cli, printedToken, ROOT, startCli, stopProcess, tempDir } from "./helpers/index.ts";

const EXAMPLES = join(ROOT, "examples");
const dir = tempDir("mapflow-examples-");

type Instance = { mapIndex: number; state: string; label?: string; result: any; error?: string; worker?: string; startedAt: number | null; endedAt: number | null };
type Report = { runId: string; state: string; tasks: Record<string, { state: string; instances: Instance[] }> };

/** The most instances that were running at one moment, from their start and end times. */
function mostAtOnce(instances: Instance[]): number {
  const edges = instances.flatMap((i) => [[i.startedAt!, 1], [i.endedAt!, -1]] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let now = 0;
  let most = 0;
  for (const [, step] of edges) most = Math.max(most, (now += step));
  return most;
}

async function run(dagId: string, conf: Record<string, unknown> = {}): Promise<{ code: number | null; report: Report; stderr: string }> {
  const { code, stdout, stderr } = await cli(["run", dagId, "--dags", EXAMPLES, "--json", "--conf", JSON.stringify(conf)], { timeoutMs: 180_000 });
  try {
    return { code, report: JSON.parse(stdout) as Report, stderr };
  } catch {
    return assert.fail(`mapflow run ${dagId} printed no JSON (exit ${code}):\n${stdout}\n${stderr}`);
  }
}

function folder(name: string, files: Record<string, string>): string {
  const path = join(dir.path, name);
  mkdirSync(path, { recursive: true });
  for (const [file, text] of Object.entries(files)) writeFileSync(join(path, file), text);
  return path;
}

after(() => dir.remove());

test("elt_files: the shipped folder loads each CSV into its own table and reports the rows", async () => {
  // In a folder not made yet, as the default (.mapflow/elt-warehouse.sqlite) is in a fresh clone.
  const warehouse = join(dir.path, "not-made-yet", "shipped.sqlite");
  const { code, report, stderr } = await run("elt_files", { warehouse });
  assert.equal(code, 0, stderr);
  assert.deepEqual(report.tasks.load!.instances.map((i) => [i.label, i.state]), [
    ["orders_2026_01.csv", "success"], ["orders_2026_02.csv", "success"], ["refunds_2026_02.csv", "success"],
  ]);
  const result = report.tasks.report!.instances[0]!.result;
  assert.deepEqual({ tables: result.tables, rows: result.rows, failed: result.failed }, { tables: 3, rows: 8, failed: 0 });
  const db = new Database(warehouse, { readonly: true });
  try {
    assert.equal(db.prepare("SELECT COUNT(*) FROM raw_orders_2026_01").pluck().get(), 4);
    assert.equal(db.prepare("SELECT SUM(rows) FROM summary").pluck().get(), 8);
  } finally {
    db.close();
  }
});

test("elt_files: the fan-out follows the folder; a bad file fails its own instance only, and the report still runs", async () => {
  const good = (n: number) => `id,amount\n${Array.from({ length: n }, (_, i) => `${i},${i * 10}`).join("\n")}\n`;
  const five = folder("five", { "a.csv": good(1), "b.csv": good(2), "c.csv": good(3), "d.csv": good(4), "e.csv": good(5), "notes.txt": "ignored" });
  const many = await run("elt_files", { folder: five, warehouse: join(dir.path, "five.sqlite") });
  assert.equal(many.code, 0, many.stderr);
  assert.equal(many.report.tasks.load!.instances.length, 5);
  assert.equal(many.report.tasks.report!.instances[0]!.result.rows, 15);

  const mixed = folder("mixed", { "a.csv": good(2), "broken.csv": "id,amount\n1,2,3,4\n", "c.csv": good(3) });
  const partial = await run("elt_files", { folder: mixed, warehouse: join(dir.path, "mixed.sqlite") });
  // As in Airflow, the run's state follows its leaf task: the report ran (all_done) and succeeded.
  assert.equal(partial.code, 0, partial.stderr);
  assert.deepEqual(partial.report.tasks.load!.instances.map((i) => [i.label, i.state]), [["a.csv", "success"], ["broken.csv", "failed"], ["c.csv", "success"]]);
  assert.match(partial.report.tasks.load!.instances[1]!.error ?? "", /column|record/i);
  const summary = partial.report.tasks.report!;
  assert.equal(summary.state, "success");
  assert.deepEqual({ tables: summary.instances[0]!.result.tables, rows: summary.instances[0]!.result.rows, failed: summary.instances[0]!.result.failed }, { tables: 2, rows: 5, failed: 1 });
});

test("elt_files: an empty folder skips the load, and the report (all_done) says nothing was loaded", async () => {
  const empty = folder("empty", {});
  const { code, report, stderr } = await run("elt_files", { folder: empty, warehouse: join(dir.path, "empty.sqlite") });
  assert.equal(code, 0, stderr);
  assert.equal(report.tasks.load!.state, "skipped");
  assert.equal(report.tasks.report!.state, "success");
  assert.deepEqual(report.tasks.report!.instances[0]!.result, { tables: 0, rows: 0, failed: 0, note: "no file was loaded" });
});

test("per_customer: each run trains one model per customer listed then; dropped customers keep their past results", async () => {
  const data = tempDir("mapflow-customers-");
  const standalone = await startCli(["standalone", "--dags", EXAMPLES, "--data", data.path, "--ui-port", "0"], /web UI at (http:\S+)\n(?:.*\n)*?.*#token=/);
  try {
    const ui = /web UI at (http:\S+)/.exec(standalone.output())![1]!;
    const auth = bearer(printedToken(standalone.output()));
    const list = join(data.path, "customers.json");
    const trigger = async (ids: string[]) => {
      writeFileSync(list, JSON.stringify(ids.map((id) => ({ id, name: id.toUpperCase() }))));
      const { code, stdout, stderr } = await cli(["trigger", "per_customer", "--conf", JSON.stringify({ customers: list }), "--wait", "--json", "--data", data.path]);
      assert.equal(code, 0, stderr);
      return JSON.parse(stdout) as Report;
    };
    const first = await trigger(["acme", "globex", "initech"]);
    assert.deepEqual(first.tasks.train!.instances.map((i) => i.label), ["acme", "globex", "initech"]);
    // The list changes with no change to the DAG: acme leaves, piedpiper joins.
    const second = await trigger(["globex", "initech", "piedpiper"]);
    assert.deepEqual(second.tasks.train!.instances.map((i) => i.label), ["globex", "initech", "piedpiper"]);
    assert.equal(second.tasks.train!.instances[2]!.result.customer, "piedpiper");
    assert.ok(second.tasks.rank!.instances[0]!.result.some((line: string) => line.startsWith("piedpiper:")));

    // acme's model stays in the first run's history, as the UI shows it.
    const deadline = Date.now() + 10_000;
    let labels: string[] = [];
    while (!labels.includes("acme") && Date.now() < deadline) {
      const page = (await (await fetch(`${ui}/api/runs/${first.runId}/tasks/train/instances`, { headers: auth })).json()) as { rows?: { label: string; state: string; result: string }[] };
      labels = (page.rows ?? []).map((r) => r.label);
      if (!labels.includes("acme")) await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual(labels, ["acme", "globex", "initech"]);
  } finally {
    await stopProcess(standalone, "SIGINT");
    data.remove();
  }
});

test("hpo_sweep: 24 grid trials on the train queue, 4 at a time; the leaderboard is stored as artifacts of the run", async () => {
  const data = tempDir("mapflow-hpo-");
  const standalone = await startCli(["standalone", "--dags", EXAMPLES, "--data", data.path, "--no-ui"], /mapflow standalone: NATS at/);
  try {
    const { code, stdout, stderr } = await cli(["trigger", "hpo_sweep", "--wait", "--json", "--data", data.path], { timeoutMs: 180_000 });
    assert.equal(code, 0, stderr);
    const report = JSON.parse(stdout) as Report;
    const trials = report.tasks.trial!.instances;
    assert.equal(trials.length, 24);
    assert.ok(trials.every((t) => t.state === "success" && t.worker?.endsWith(":train")), "every trial ran on a worker of the train queue");
    assert.ok(mostAtOnce(trials) <= 4, `maxActivePerRun 4 held (${mostAtOnce(trials)} at once)`);
    const accuracies = trials.map((t) => t.result.accuracy as number);
    assert.ok(Math.min(...accuracies) < Math.max(...accuracies), "the hyperparameters make a difference");
    const winner = report.tasks.leaderboard!.instances[0]!.result;
    assert.equal(winner.accuracy, Math.max(...accuracies));
    assert.deepEqual(Object.keys(winner.best).sort(), ["maxDepth", "maxFeatures", "nEstimators"]);

    const listed = await cli(["artifacts", "list", report.runId, "--json", "--data", data.path]);
    assert.equal(listed.code, 0, listed.stderr);
    const names = (JSON.parse(listed.stdout) as { artifacts: { name: string; contentType: string }[] }).artifacts.map((a) => `${a.name} ${a.contentType}`).sort();
    assert.deepEqual(names, ["leaderboard.json application/json", "leaderboard.svg image/svg+xml"]);
    const out = join(data.path, "leaderboard.json");
    const got = await cli(["artifacts", "get", report.runId, "leaderboard", "leaderboard.json", "--out", out, "--data", data.path]);
    assert.equal(got.code, 0, got.stderr);
    const board = JSON.parse(readFileSync(out, "utf8")) as { trials: { accuracy: number }[] };
    assert.equal(board.trials.length, 24);
    assert.equal(board.trials[0]!.accuracy, winner.accuracy);

    // Random search: trials sampled at run time; once one reaches the target, trials that start later stop early.
    const random = await cli(["trigger", "hpo_random", "--conf", JSON.stringify({ trials: 16, target: 0.9 }), "--wait", "--json", "--data", data.path], { timeoutMs: 180_000 });
    assert.equal(random.code, 0, random.stderr);
    const sampled = (JSON.parse(random.stdout) as Report).tasks.trial!.instances;
    assert.equal(sampled.length, 16);
    const reached = Math.min(...sampled.filter((t) => t.result.accuracy >= 0.9).map((t) => t.endedAt!));
    const stopped = sampled.filter((t) => t.result.stoppedEarly);
    assert.ok(stopped.length >= 1, "some trials stopped early");
    assert.ok(stopped.every((t) => t.startedAt! >= reached - 5), "no trial stopped before a trial had reached the target");
  } finally {
    await stopProcess(standalone, "SIGINT");
    data.remove();
  }
});
