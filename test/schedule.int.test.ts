// Scheduled runs on a real nats-server: missed intervals are caught up, each run's dates reach its tasks,
// maxActiveRuns holds runs back, pauses stop them, and no restart or second coordinator requests one twice.
// The coordinator's clock is the test's (2024-01-04 and on), so every interval it looks at has already ended.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadDags, pickDag, type DagBag } from "../libs/dags/index.ts";
import { decodeRecord, appendEvent, connectNats, ensureStreams, readRecords, startNatsServer, type Nats, type NatsServer } from "../libs/nats/index.ts";
import type { RunRequested } from "../libs/events/index.ts";
import { KEYS, subjects } from "../libs/names/index.ts";
import { decodeValue } from "../libs/codec/index.ts";
import { createLogger } from "../libs/log/index.ts";
import { dag, task } from "../libs/sdk/index.ts";
import { startCoordinator, type Coordinator } from "../services/coordinator/index.ts";
import { snapshotBucket } from "../services/coordinator/snapshot.ts";
import { registerDags, startWorker, type Worker } from "../services/worker/index.ts";
import { requestRun, waitForRun } from "../services/cli/runs.ts";
import { FIXTURES, tempDir } from "./helpers/index.ts";

const log = createLogger("test", "warn");
const dir = tempDir();
let server: NatsServer;
let nats: Nats;
let bag: DagBag;
let coordinator: Coordinator | undefined;
let worker: Worker | undefined;

/** The coordinator's clock. */
let clock = Date.parse("2024-01-04T00:30:00Z");
const start = () => startCoordinator({ nats, log, now: () => clock, tickMs: 50 });
const day = (d: number) => Date.parse(`2024-01-${String(d).padStart(2, "0")}T00:00:00Z`);

before(async () => {
  server = await startNatsServer({ storeDir: join(dir.path, "nats") });
  nats = await connectNats(server.url, "test", server.auth("admin"));
  await ensureStreams(nats);
  bag = await loadDags(join(FIXTURES, "schedules"));
  assert.deepEqual(bag.errors, []);
  await registerDags(nats, bag);
  // Paused before any coordinator runs: the first one must read the pause before it schedules anything.
  await appendEvent(nats, { type: "DagPaused", dagId: "paused_daily", paused: true, at: clock });
});

after(async () => {
  await worker?.stop();
  await coordinator?.stop();
  await nats?.nc.close();
  await server?.stop();
  dir.remove();
});

/** Every run request in the log, in log order. */
async function requests(): Promise<RunRequested[]> {
  const found: RunRequested[] = [];
  for await (const record of readRecords(nats, { filter: subjects.allRequests })) {
    const event = decodeRecord(record);
    if (event.type === "RunRequested") found.push(event);
  }
  return found;
}

const runsOf = async (dagId: string) => (await requests()).filter((r) => r.dagId === dagId);

async function waitUntil(what: string, check: () => Promise<boolean>, ms = 30_000): Promise<void> {
  for (const deadline = Date.now() + ms; !(await check());) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Moves the clock on an hour, twice, waiting each time for the probe DAG's run for the hour that just
 * ended. A scheduler pass reads the clock once and looks at every DAG; passes run one at a time. The pass
 * that requests the first probe run began after the clock moved, and the second one after that pass
 * ended: so once the second probe run is in the log, a whole pass has looked at every DAG since the call
 * began, and what it did not request, it would not.
 */
async function passOfTheScheduler(): Promise<void> {
  for (let n = 0; n < 2; n++) {
    clock = Math.floor(clock / 3_600_000) * 3_600_000 + 3_600_000;
    const due = clock - 3_600_000;
    await waitUntil(`the probe's run for ${new Date(due).toISOString()} is requested`, async () => (await runsOf("probe_hourly")).some((r) => r.dataIntervalStart === due));
  }
}

const intervals = (runs: RunRequested[]) => runs.map((r) => [r.runId, r.runType, r.logicalDate, r.dataIntervalStart, r.dataIntervalEnd]);
const expected = (dagId: string, days: number[]) =>
  days.map((d) => [`${dagId}__scheduled__202401${String(d).padStart(2, "0")}T000000Z`, "scheduled", day(d), day(d), day(d + 1)]);

test("missed daily intervals get runs, oldest first, at most maxActiveRuns (2) unfinished at once; the paused DAG gets none", async () => {
  coordinator = await start();
  await waitUntil("every_day has two runs", async () => (await runsOf("every_day")).length >= 2);
  await passOfTheScheduler();
  assert.deepEqual(intervals(await runsOf("every_day")), expected("every_day", [1, 2]), "the third interval waits: no worker has finished a run");
  assert.deepEqual(await runsOf("paused_daily"), [], "a paused DAG is not scheduled");
  assert.deepEqual(await runsOf("manual_only"), [], "a DAG without a schedule is not scheduled");
});

test("each task sees its run's logical date and data interval; a finished run frees the slot for the next interval", async () => {
  worker = await startWorker({ nats, log, bag });
  await waitUntil("every_day has three runs", async () => (await runsOf("every_day")).length >= 3);
  const runs = await runsOf("every_day");
  assert.deepEqual(intervals(runs), expected("every_day", [1, 2, 3]));
  for (const [n, run] of runs.entries()) {
    const state = await waitForRun(nats, run.runId);
    assert.equal(state.state, "success");
    const dates = state.tasks.dates!.instances![0]!.result as Date[];
    assert.deepEqual(dates.map((d) => d.toISOString()), [day(n + 1), day(n + 1), day(n + 2)].map((t) => new Date(t).toISOString()), `run ${run.runId}`);
  }
});

test("a restarted coordinator requests nothing twice: from its snapshot, or folding the whole log", async () => {
  const before = intervals(await runsOf("every_day"));
  await coordinator!.stop();
  coordinator = await start();
  await passOfTheScheduler();
  assert.deepEqual(intervals(await runsOf("every_day")), before, "restarted from its snapshot");

  // With no snapshot, a coordinator that does not schedule (mapflow run's) folds the positions from the
  // whole log, and keeps them in the snapshot it writes, for the next coordinator that does schedule.
  await coordinator.stop();
  const snapshots = await snapshotBucket(nats);
  await snapshots.delete(KEYS.coordinatorSnapshot);
  const quiet = await startCoordinator({ nats, log, now: () => clock, tickMs: 50, scheduling: false, snapshotEveryMs: 0 });
  await waitUntil("the coordinator has written a snapshot", async () => ((await snapshots.get(KEYS.coordinatorSnapshot))?.value.length ?? 0) > 0);
  await quiet.stop();
  const saved = decodeValue((await snapshots.get(KEYS.coordinatorSnapshot))!.value) as { scheduled: Record<string, number> };
  assert.equal(saved.scheduled["every_day"], day(4), "every_day's position: the end of its newest scheduled interval");

  await snapshots.delete(KEYS.coordinatorSnapshot);
  coordinator = await start();
  await passOfTheScheduler();
  assert.ok(coordinator.foldedAtStart() > 0, "without a snapshot it folded the log");
  assert.deepEqual(intervals(await runsOf("every_day")), before, "restarted without a snapshot");
  const ids = (await requests()).map((r) => r.runId);
  assert.equal(new Set(ids).size, ids.length, "no run was requested twice");
});

test("unpausing catches the DAG up; paused again it gets no scheduled runs, but a manual trigger still runs it", async () => {
  await appendEvent(nats, { type: "DagPaused", dagId: "paused_daily", paused: false, at: clock });
  await waitUntil("paused_daily has caught up", async () => (await runsOf("paused_daily")).length >= 3);
  assert.deepEqual(intervals(await runsOf("paused_daily")), expected("paused_daily", [1, 2, 3]));

  await appendEvent(nats, { type: "DagPaused", dagId: "paused_daily", paused: true, at: clock });
  const { version, dag: loaded } = pickDag(bag, "paused_daily");
  const manual = await waitForRun(nats, await requestRun(nats, { dagId: "paused_daily", version, spec: loaded.spec, conf: {} }, () => clock));
  assert.equal(manual.state, "success");
  assert.equal(manual.runType, "manual");
  assert.equal((manual.tasks.start!.instances![0]!.result as Date).getTime(), clock, "a manual run's interval is its trigger instant");

  // The next day ends: every_day gets its run, the paused DAG does not.
  clock = day(5) + 30 * 60_000;
  await waitUntil("every_day has its run for the 4th", async () => (await runsOf("every_day")).length >= 4);
  await passOfTheScheduler();
  assert.equal((await runsOf("paused_daily")).filter((r) => r.runType === "scheduled").length, 3);
});

test("two coordinators scheduling at once (no lease between them) request each interval once", async () => {
  await coordinator!.stop();
  coordinator = undefined;
  // A DAG no worker runs: its runs stay unfinished, so both coordinators see all three intervals due.
  const twin = dag({ id: "twin", schedule: "@daily", startDate: "2024-01-02", catchup: true }, () => {
    task("t", () => 1)({});
  });
  const [a, b] = await Promise.all([start(), start()]);
  try {
    await appendEvent(nats, { type: "DagRegistered", dagId: "twin", version: "v1", spec: twin.spec, at: clock });
    await waitUntil("twin has its three runs", async () => (await runsOf("twin")).length >= 3);
    await passOfTheScheduler();
    assert.deepEqual(intervals(await runsOf("twin")), expected("twin", [2, 3, 4]));
  } finally {
    await Promise.all([a.stop(), b.stop()]);
  }
});
