// Retention through the CLI on a standalone stack: db clean archives old finished runs, checks the archive
// replays to the same rows, then purges them from the log, task logs, stored values and read model.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { connectNats, readTryLogs, valueStore, type Nats } from "../libs/nats/index.ts";
import { runDigest } from "../libs/store/digest.ts";
import { cli, FIXTURES, startCli, connectToStandalone, stopProcess, tempDir } from "./helpers/index.ts";

const dir = tempDir();
let standalone: Awaited<ReturnType<typeof startCli>>;
let nats: Nats;

const mapflow = (...args: string[]) => cli([...args, "--data", dir.path], { timeoutMs: 120_000 });

async function trigger(dagId: string): Promise<string> {
  const { code, stdout, stderr } = await mapflow("trigger", dagId, "--wait", "--json");
  assert.ok(code === 0 || code === 1, stderr);
  return (JSON.parse(stdout) as { runId: string }).runId;
}

function live<T>(read: (db: Database.Database) => T): T {
  const db = new Database(join(dir.path, "mapflow.sqlite"), { readonly: true });
  try {
    return read(db);
  } finally {
    db.close();
  }
}

/** Until the projector has passed the log's end (db clean appends RunsPurged for it to fold). */
async function projected(): Promise<void> {
  const last = (await nats.jsm.streams.info("MF_EVENTS")).state.last_seq;
  for (const deadline = Date.now() + 10_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 100))) {
    if (live((db) => db.prepare("SELECT last_seq FROM projection").pluck().get() as number) >= last) return;
  }
  assert.fail("the projector did not reach the log's end");
}

let old: string[];
let kept: string;
let cutoff: string;
let oldDigests: Map<string, string>;

before(async () => {
  standalone = await startCli(["standalone", "--dags", join(FIXTURES, "dags"), "--data", dir.path, "--no-ui"], /mapflow standalone: NATS at/);
  nats = await connectToStandalone(dir.path);
  // Old runs: one with stored (large) values, one failed, one whose (shell) tasks logged their output.
  old = [await trigger("big_inputs"), await trigger("failing"), await trigger("shell_env")];
  await new Promise((r) => setTimeout(r, 20));
  cutoff = new Date().toISOString();
  await new Promise((r) => setTimeout(r, 20));
  kept = await trigger("retry");
  await projected();
  oldDigests = live((db) => new Map(old.map((id) => [id, runDigest(db, id)])));
});

after(async () => {
  await nats?.nc.close();
  if (standalone) await stopProcess(standalone, "SIGINT");
  dir.remove();
});

test("a dry run lists the old finished runs with their events, and changes nothing", async () => {
  const dry = await mapflow("db", "clean", "--before", cutoff, "--dry-run", "--json");
  assert.equal(dry.code, 0, dry.stderr);
  const report = JSON.parse(dry.stdout) as { runs: { runId: string; events: number }[] };
  assert.deepEqual(report.runs.map((r) => r.runId).sort(), [...old].sort());
  assert.ok(report.runs.every((r) => r.events > 0));
  assert.equal((await mapflow("events", old[0]!)).code, 0, "still in the log");
});

test("clean needs an archive or an explicit --no-archive, and a date it can read", async () => {
  const missing = await mapflow("db", "clean", "--before", cutoff);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /--archive <file>, or pass --no-archive/);
  const badDate = await mapflow("db", "clean", "--before", "last tuesday", "--archive", join(dir.path, "x.jsonl"));
  assert.equal(badDate.code, 2);
  assert.match(badDate.stderr, /--before takes an ISO date/);
});

test("clean archives, checks, and purges the old runs from the log, logs, stored values and read model; newer runs stay", async () => {
  const store = await valueStore(nats);
  const storedBefore = (await store.list()).filter((o) => o.name.startsWith(`results/${old[0]}/`)).length;
  assert.ok(storedBefore > 0, "the big_inputs run stored values");
  assert.ok((await readTryLogs(nats, old[2]!, "echo_value", 0)).length > 0, "the shell run logged");
  const archive = join(dir.path, "old.jsonl");
  const cleaned = await mapflow("db", "clean", "--before", cutoff, "--archive", archive);
  assert.equal(cleaned.code, 0, cleaned.stderr);
  assert.match(cleaned.stdout, /cleaned 3 runs .*archived to .* and checked/);
  assert.ok(existsSync(archive));
  await projected();

  for (const id of old) {
    const gone = await mapflow("events", id);
    assert.equal(gone.code, 2, `run ${id} left the log`);
    assert.equal(live((db) => db.prepare("SELECT COUNT(*) FROM dag_runs WHERE run_id = ?").pluck().get(id)), 0);
    assert.equal(live((db) => db.prepare("SELECT COUNT(*) FROM task_instances WHERE run_id = ?").pluck().get(id)), 0);
  }
  assert.equal((await store.list()).filter((o) => o.name.startsWith(`results/${old[0]}/`)).length, 0, "its stored values are deleted");
  assert.deepEqual(await readTryLogs(nats, old[2]!, "echo_value", 0), [], "its task logs are purged");
  assert.equal(live((db) => db.prepare("SELECT state FROM dag_runs WHERE run_id = ?").pluck().get(kept)), "success");
  assert.equal((await mapflow("events", kept)).code, 0);

  // The archive replays to the rows the runs had, and the stack still verifies.
  const out = join(dir.path, "from-archive.sqlite");
  assert.equal((await cli(["replay", "--from-archive", archive, "--out", out])).code, 0);
  const replayed = new Database(out, { readonly: true });
  try {
    assert.deepEqual(new Map(old.map((id) => [id, runDigest(replayed, id)])), oldDigests);
  } finally {
    replayed.close();
  }
  const verified = await mapflow("audit", "verify");
  assert.equal(verified.code, 0, verified.stdout + verified.stderr);

  const again = await mapflow("db", "clean", "--before", cutoff, "--archive", join(dir.path, "again.jsonl"));
  assert.equal(again.code, 0);
  assert.match(again.stdout, /nothing to clean/);
});
