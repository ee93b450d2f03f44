// The auditor's commands through the CLI on a standalone stack: events, replay (time travel), audit verify
// (a tampered projection and a forged result are caught), and the golden log of today's schema.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { appendEvent, connectNats, type Nats } from "../libs/nats/index.ts";
import { runDigests } from "../libs/store/digest.ts";
import { cli, FIXTURES, ROOT, startCli, connectToStandalone, stopProcess, tempDir } from "./helpers/index.ts";

const dir = tempDir();
let standalone: Awaited<ReturnType<typeof startCli>>;
let nats: Nats;
let runId: string;

type Row = { seq: number; time: string; type: string; taskId: string | null; mapIndex: number | null; try: number | null; worker: string | null; payload: Record<string, unknown> };

async function mapflow(...args: string[]) {
  return cli([...args, "--data", dir.path]);
}

async function history(): Promise<Row[]> {
  const { code, stdout, stderr } = await mapflow("events", runId, "--json");
  assert.equal(code, 0, stderr);
  return stdout.trim().split("\n").map((line) => JSON.parse(line) as Row);
}

function tables(file: string) {
  const db = new Database(file, { readonly: true });
  try {
    return {
      run: db.prepare("SELECT state FROM dag_runs WHERE run_id = ?").pluck().get(runId),
      add: db.prepare("SELECT state, map_count, counts FROM tasks WHERE run_id = ? AND task_id = 'add'").get(runId) as { state: string; map_count: number; counts: string } | undefined,
    };
  } finally {
    db.close();
  }
}

before(async () => {
  standalone = await startCli(["standalone", "--dags", join(ROOT, "examples"), "--data", dir.path, "--no-ui", "--run", "sample_repeated_mapping"], /serving;/);
  runId = /run ([0-9A-Z]{26}) of sample_repeated_mapping: success/.exec(standalone.output())![1]!;
  nats = await connectToStandalone(dir.path);
});

after(async () => {
  await nats?.nc.close();
  if (standalone) await stopProcess(standalone, "SIGINT");
  dir.remove();
});

test("events prints a run's history in log order, with task, map index, try, worker and payload", async () => {
  const rows = await history();
  assert.deepEqual(rows.map((r) => r.seq), [...rows.map((r) => r.seq)].sort((a, b) => a - b));
  assert.equal(rows[0]!.type, "RunRequested");
  assert.equal(rows.at(-1)!.type, "RunFinished");
  assert.deepEqual(rows.find((r) => r.type === "TaskExpanded")!.payload, { count: 6 });
  const results = rows.filter((r) => r.type === "InstanceSucceeded" && r.taskId === "add");
  assert.deepEqual(results.map((r) => r.mapIndex).sort(), [0, 1, 2, 3, 4, 5]);
  assert.ok(results.every((r) => r.try === 1 && r.worker && typeof r.payload["result"] === "number" && !Number.isNaN(Date.parse(r.time))));
  const text = await mapflow("events", runId);
  assert.match(text.stdout, /TaskExpanded\s+add\s+\{"count":6\}/);
  const unknown = await mapflow("events", "01NOSUCHRUN0000000000000000");
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /not in the log of this stack/);
});

test("events --follow prints new events as they come", async () => {
  const follower = await startCli(["events", runId, "--follow", "--data", dir.path], /RunFinished/);
  try {
    const cleared = await mapflow("clear", runId, "add", "--map-index", "1");
    assert.equal(cleared.code, 0, cleared.stderr);
    for (const deadline = Date.now() + 20_000; !/ClearRequested[\s\S]*InstanceSucceeded\s+add\[1\]\s+#2/.test(follower.output()) && Date.now() < deadline;) {
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.match(follower.output(), /ClearRequested[\s\S]*InstanceSucceeded\s+add\[1\]\s+#2/);
  } finally {
    await stopProcess(follower, "SIGINT");
  }
});

test("replay --until a sequence rebuilds the read model as it stood then (time travel)", async () => {
  const rows = await history();
  // Cut after the first entry of the log holding results of `add` (a worker appends the results that finish together in one InstancesFinished).
  const results = rows.filter((r) => r.type === "InstanceSucceeded" && r.taskId === "add");
  const cut = results[0]!.seq;
  const done = results.filter((r) => r.seq <= cut).length;
  const out = join(dir.path, "middle.sqlite");
  const replayed = await mapflow("replay", "--until", String(cut), "--out", out, "--json");
  assert.equal(replayed.code, 0, replayed.stderr);
  assert.equal((JSON.parse(replayed.stdout) as { lastSeq: number }).lastSeq, cut);
  const middle = tables(out);
  assert.equal(middle.run, "running");
  const add = done === 6 ? { state: "success", counts: { success: 6 } } : { state: "running", counts: { success: done, queued: 6 - done } };
  assert.deepEqual({ ...middle.add, counts: JSON.parse(middle.add!.counts) }, { ...add, map_count: 6 });
  const before = join(dir.path, "before.sqlite");
  assert.equal((await mapflow("replay", "--until", String(cut - 1), "--out", before)).code, 0);
  assert.deepEqual(JSON.parse(tables(before).add!.counts), { queued: 6 }, "one entry earlier, no result of add yet");

  // By time: just after the expansion was stored, before any result.
  const expanded = rows.find((r) => r.type === "TaskExpanded")!;
  const firstResult = rows.find((r) => r.type === "InstanceSucceeded")!;
  if (Date.parse(firstResult.time) > Date.parse(expanded.time)) {
    const byTime = join(dir.path, "by-time.sqlite");
    assert.equal((await mapflow("replay", "--until", expanded.time, "--out", byTime)).code, 0);
    assert.deepEqual(JSON.parse(tables(byTime).add!.counts), { queued: 6 });
  }

  // One run's events only: its rows, and none of the DAG registrations around it.
  const one = join(dir.path, "one-run.sqlite");
  assert.equal((await mapflow("replay", "--run", runId, "--out", one)).code, 0);
  const only = new Database(one, { readonly: true });
  try {
    assert.deepEqual(only.prepare("SELECT run_id FROM dag_runs").pluck().all(), [runId]);
    assert.equal(only.prepare("SELECT COUNT(*) FROM dags").pluck().get(), 0);
  } finally {
    only.close();
  }

  const again = await mapflow("replay", "--out", out);
  assert.equal(again.code, 2);
  assert.match(again.stderr, /already exists/);
  assert.equal((await mapflow("replay", "--until", "yesterday-ish", "--out", join(dir.path, "x.sqlite"))).code, 2);
});

test("audit verify passes on an honest stack, and catches a tampered projection, naming the row", async () => {
  const clean = await mapflow("audit", "verify");
  assert.equal(clean.code, 0, clean.stdout + clean.stderr);
  assert.match(clean.stdout, new RegExp(`${runId}  [0-9a-f]{16}  ok`));
  assert.match(clean.stdout, /verified: 1 runs, projection == log, log checks pass/);

  const live = new Database(join(dir.path, "mapflow.sqlite"));
  live.pragma("busy_timeout = 5000");
  const original = live.prepare("SELECT result FROM task_instances WHERE run_id = ? AND task_id = 'add' AND map_index = 4").pluck().get(runId);
  live.prepare("UPDATE task_instances SET result = '999' WHERE run_id = ? AND task_id = 'add' AND map_index = 4").run(runId);
  try {
    const tampered = await mapflow("audit", "verify");
    assert.equal(tampered.code, 1);
    assert.match(tampered.stdout, new RegExp(`first difference, table task_instances at \\{"run_id":"${runId}","task_id":"add","map_index":4\\}`));
    assert.match(tampered.stdout, /live projection: .*"result":"999"/);
    assert.match(tampered.stdout, /DIFFERS/);
  } finally {
    live.prepare("UPDATE task_instances SET result = ? WHERE run_id = ? AND task_id = 'add' AND map_index = 4").run(original, runId);
    live.close();
  }
  assert.equal((await mapflow("audit", "verify")).code, 0, "restored, it verifies again");
});

test("audit verify checks the log itself: a forged result for an instance never dispatched is caught", async () => {
  const forged = await appendEvent(nats, {
    type: "InstanceSucceeded", runId, taskId: "add", mapIndex: 99, try: 1, result: 0, worker: "forger", startedAt: Date.now(), at: Date.now(),
  });
  // Wait for the projector to pass it: the audit compares at the projection's checkpoint.
  for (const deadline = Date.now() + 10_000; Date.now() < deadline;) {
    const db = new Database(join(dir.path, "mapflow.sqlite"), { readonly: true });
    const seq = db.prepare("SELECT last_seq FROM projection").pluck().get() as number;
    db.close();
    if (seq >= forged.seq) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const audit = await mapflow("audit", "verify", "--json");
  assert.equal(audit.code, 1);
  const report = JSON.parse(audit.stdout) as { difference?: unknown; findings: { seq: number; runId: string; taskId: string; mapIndex: number; problem: string }[] };
  assert.equal(report.difference, undefined, "the fold ignored the forged result, so the tables still agree");
  assert.deepEqual(report.findings.map((f) => [f.seq, f.runId, f.taskId, f.mapIndex, f.problem]), [[forged.seq, runId, "add", 99, "a result for an instance that was never dispatched"]]);
});

for (const version of ["v3", "v5", "v6"]) {
  test(`the golden log recorded by an earlier mapflow (schema ${version}) still replays to the same digests`, async () => {
    const fixture = join(FIXTURES, "log", version);
    const expected = JSON.parse(readFileSync(join(fixture, "digests.json"), "utf8")) as { events: number; digests: Record<string, string> };
    const out = join(dir.path, `golden-${version}.sqlite`);
    const replayed = await cli(["replay", "--from-archive", join(fixture, "log.jsonl"), "--out", out, "--json"]);
    assert.equal(replayed.code, 0, replayed.stderr);
    assert.equal((JSON.parse(replayed.stdout) as { events: number }).events, expected.events);
    const db = new Database(out, { readonly: true });
    try {
      assert.deepEqual(Object.fromEntries(runDigests(db)), expected.digests);
    } finally {
      db.close();
    }
  });
}
