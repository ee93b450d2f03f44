// The CLI contract: exit codes, clear errors, standalone + trigger, and several worker processes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ACCEPTANCE, FIXTURE_DAGS, ROOT, bearer, cli, printedToken, startCli, stopProcess, tempDir } from "./helpers/index.ts";
import { connectNats, ensureStreams, startNatsServer } from "../libs/nats/index.ts";
import { loadDags, pickDag } from "../libs/dags/index.ts";
import { createLogger } from "../libs/log/index.ts";
import { startCoordinator } from "../services/coordinator/index.ts";
import { requestRun, waitForRun } from "../services/cli/runs.ts";

test("a failed run exits 1 and says which instance failed and why", async () => {
  const { code, stdout, stderr } = await cli(["run", "failing", "--dags", FIXTURE_DAGS]);
  assert.equal(code, 1);
  assert.match(stdout, /failing: failed/);
  assert.match(stdout, /check \[3\]\s+failed\s+2 success, 1 failed  first failure: n=2 is not allowed/);
  // The worker's JSON log line names the instance and try; the progress line counts the failure.
  const failed = stderr.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === "task failed");
  assert.ok(failed, stderr);
  assert.deepEqual([failed.taskId, failed.mapIndex, failed.try, typeof failed.runId], ["check", 1, 1, "string"]);
  assert.match(stderr, /^check \[3\]: 3\/3 done, 1 failed$/m);
  const quiet = await cli(["run", "failing", "--dags", FIXTURE_DAGS, "--log-level", "fatal", "--no-progress"]);
  assert.equal(quiet.code, 1);
  assert.equal(quiet.stderr, "", "--log-level fatal hides the error line");
});

test("a DAG file loaded as CommonJS, outside the repository and run from its own folder, imports mapflow; its NonRetryableError is not retried", async () => {
  const dir = tempDir();
  try {
    // No package.json above it: a .ts file loads as CommonJS, resolving "mapflow" through require().
    writeFileSync(join(dir.path, "loose.ts"), [
      'import { dag, task, NonRetryableError } from "mapflow";',
      'export default dag({ id: "loose" }, () => {',
      '  task("load", ({ n }: { n: number }) => {',
      '    if (n === 2) throw new NonRetryableError("n=2 has no input file");',
      "    return n * 10;",
      "  }, { retries: 2, retryDelayMs: 10 }).expand({ n: [1, 2] });",
      "});",
    ].join("\n"));
    const { code, stdout, stderr } = await cli(["run", "loose", "--dags", dir.path, "--json"], { cwd: dir.path });
    assert.equal(code, 1, stderr);
    const report = JSON.parse(stdout) as { tasks: Record<string, { instances: { state: string; tries: number; result: unknown }[] }> };
    assert.deepEqual(report.tasks["load"]!.instances.map((i) => [i.state, i.tries, i.result]), [["success", 1, 10], ["failed", 1, null]]);
  } finally {
    dir.remove();
  }
});

test("bad input exits 2 with a message saying what was wrong and what to do", async () => {
  const badConf = await cli(["run", "sample_repeated_mapping", "--dags", ACCEPTANCE, "--conf", "{nope"]);
  assert.equal(badConf.code, 2);
  assert.match(badConf.stderr, /--conf is not valid JSON .*pass an object, e\.g\. --conf/);

  const notObject = await cli(["run", "sample_repeated_mapping", "--dags", ACCEPTANCE, "--conf", "[1]"]);
  assert.equal(notObject.code, 2);
  assert.match(notObject.stderr, /--conf must be a JSON object, got an array/);

  const unknown = await cli(["run", "no_such_dag", "--dags", ACCEPTANCE]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /DAG 'no_such_dag' was not found in .*acceptance; DAGs found: empty_map, partial_expand/);

  const badId = await cli(["run", "a.b", "--dags", ACCEPTANCE]);
  assert.equal(badId.code, 2);
  assert.match(badId.stderr, /'a\.b' is not a valid DAG id/);

  const missingDir = await cli(["run", "x", "--dags", join(ROOT, "no-such-folder")]);
  assert.equal(missingDir.code, 2);
  assert.match(missingDir.stderr, /cannot read the DAG folder .*no-such-folder/);
});

test("a malformed DAG file is reported with its path and the task at fault", async () => {
  const broken = join(ROOT, "test", "fixtures", "broken_dags");
  const { code, stderr } = await cli(["run", "bad_map", "--dags", broken]);
  assert.equal(code, 2);
  assert.match(stderr, /broken_dags\/bad_map\.ts: task 'train': 'retries' is a task option and cannot be mapped/);
});

test("trigger with no stack to talk to exits 3 and says what to check", async () => {
  const dir = tempDir();
  try {
    const { code, stderr } = await cli(["trigger", "x", "--data", dir.path]);
    assert.equal(code, 3);
    assert.match(stderr, /no stack is running on data dir .* start one with 'mapflow standalone/);
  } finally {
    dir.remove();
  }
});

test("standalone keeps a stack up and serves the UI; trigger --wait --json finds it through the data dir and prints the run", async () => {
  const dir = tempDir();
  // Its log lines (written apart from its printed ones) may land between the address line and the token's.
  const standalone = await startCli(["standalone", "--dags", ACCEPTANCE, "--data", dir.path, "--ui-port", "0"], /mapflow standalone: NATS at .*\n(?:.*\n)*?.*api-token.*\n/);
  try {
    assert.ok(existsSync(join(dir.path, "stack.json")));
    const ui = /web UI at (http:\/\/127\.0\.0\.1:\d+)/.exec(standalone.output())?.[1];
    assert.ok(ui, `standalone names its UI:\n${standalone.output()}`);
    // A first start makes the API token and prints the link that signs in with it.
    assert.match(standalone.output(), new RegExp(`open ${ui}/#token=[\\w-]+ to sign in`));
    const auth = bearer(printedToken(standalone.output()));
    assert.equal((await fetch(`${ui}/api/dags`)).status, 401, "the API wants the token");
    // The projector lists the DAGs once it has folded their registration.
    const listed = async () => ((await (await fetch(`${ui}/api/dags`, { headers: auth })).json()) as { dagId: string }[]).some((d) => d.dagId === "sample_repeated_mapping");
    for (const deadline = Date.now() + 10_000; !(await listed()) && Date.now() < deadline;) await new Promise((r) => setTimeout(r, 100));
    assert.ok(await listed(), "the UI lists the stack's DAGs");
    const { code, stdout, stderr } = await cli(["trigger", "sample_repeated_mapping", "--wait", "--json", "--data", dir.path]);
    assert.equal(code, 0, stderr);
    const run = JSON.parse(stdout) as { state: string; tasks: Record<string, { instances: { result: unknown }[] }> };
    assert.equal(run.state, "success");
    assert.deepEqual(run.tasks.add!.instances.map((i) => i.result), [7, 12, 9, 14, 13, 18]);
    assert.deepEqual(run.tasks.print_x!.instances[0]!.result, [7, 12, 9, 14, 13, 18]);
    // stdout holds only the JSON; stderr (a pipe here, not a terminal) ends with a plain progress line per mapped task.
    assert.match(stderr, /^add \[6\]: 6\/6 done$/m);
    const quiet = await cli(["trigger", "sample_repeated_mapping", "--wait", "--no-progress", "--data", dir.path]);
    assert.equal(quiet.code, 0, quiet.stderr);
    assert.equal(quiet.stderr, "", "--no-progress shows none");

    // A mapflow.config.json in the working dir names the stack's data dir; a flag still wins over it.
    const elsewhere = tempDir();
    try {
      writeFileSync(join(elsewhere.path, "mapflow.config.json"), JSON.stringify({ data: dir.path, runs: { limit: 1 } }));
      const none = await cli(["runs", "list", "--json"], { cwd: elsewhere.path });
      assert.equal(none.code, 2, "limit is no setting: the file is refused whole");
      assert.match(none.stderr, /"runs\.limit" is not a setting/);
      writeFileSync(join(elsewhere.path, "mapflow.config.json"), JSON.stringify({ data: dir.path }));
      const listed = await cli(["runs", "list", "--json"], { cwd: elsewhere.path });
      assert.equal(listed.code, 0, listed.stderr);
      assert.ok((JSON.parse(listed.stdout) as { dagId: string }[]).some((r) => r.dagId === "sample_repeated_mapping"));
      const flagWins = await cli(["runs", "list", "--data", join(elsewhere.path, "none")], { cwd: elsewhere.path });
      assert.equal(flagWins.code, 3, flagWins.stderr);
    } finally {
      elsewhere.remove();
    }

    // `run` given that data dir uses the running stack: its worker (in the standalone process) logs the run.
    const viaRun = await cli(["run", "sample_repeated_mapping", "--dags", ACCEPTANCE, "--data", dir.path, "--json"]);
    assert.equal(viaRun.code, 0, viaRun.stderr);
    const runId = (JSON.parse(viaRun.stdout) as { runId: string }).runId;
    await new Promise((r) => setTimeout(r, 200));
    assert.match(standalone.output(), new RegExp(runId));

    const unknown = await cli(["trigger", "nope", "--data", dir.path]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /DAG 'nope' is not registered on this stack/);
  } finally {
    await stopProcess(standalone, "SIGINT");
    dir.remove();
  }
  assert.equal(standalone.exitCode, 0);
});

test("two worker processes share the instances of one mapped task", async () => {
  const dir = tempDir();
  const server = await startNatsServer({ storeDir: join(dir.path, "nats") });
  const nats = await connectNats(server.url, "test", server.auth("admin"));
  await ensureStreams(nats);
  const coordinator = await startCoordinator({ nats, log: createLogger("test", "warn") });
  const workers = await Promise.all(["wA", "wB"].map((name) =>
    startCli(["worker", "--nats", server.url, "--credentials", server.credentialsFile, "--dags", FIXTURE_DAGS, "--name", name, "--concurrency", "2"], /worker \S+ ready/)));
  try {
    const { dag, version } = pickDag(await loadDags(FIXTURE_DAGS), "slow_fanout");
    const runId = await requestRun(nats, { dagId: "slow_fanout", version, spec: dag.spec, conf: {} });
    const state = await waitForRun(nats, runId);
    assert.equal(state.state, "success");
    const naps = state.tasks.nap!.instances!;
    assert.equal(naps.length, 24);
    const byWorker = new Map<string, number>();
    for (const i of naps) byWorker.set(i.worker!, (byWorker.get(i.worker!) ?? 0) + 1);
    assert.deepEqual([...byWorker.keys()].sort(), ["wA", "wB"], `instances per worker: ${JSON.stringify([...byWorker])}`);
    assert.equal(state.tasks.count!.instances![0]!.result, 24);
  } finally {
    await Promise.all(workers.map((w) => stopProcess(w)));
    await coordinator.stop();
    await nats.nc.close();
    await server.stop();
    dir.remove();
  }
});

test("the README's first lines give the two commands", () => {
  const head = readFileSync(join(ROOT, "README.md"), "utf8").split("\n").slice(0, 15).join("\n");
  assert.match(head, /make up/);
  assert.match(head, /make test/);
});
