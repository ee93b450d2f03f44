// Artifacts, given / when / then: recorded on outcomes, kept across tries and clears by evolve, projected the same however batched;
// and the pure checks behind ctx.artifact and `mapflow workers`.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  artifactNameProblem, contentTypeProblem, DECIDING, evolve, liveWorkers, runArtifacts, type RunState, type WorkerBeat,
} from "../libs/core/index.ts";
import type { ArtifactRef, RunEvent } from "../libs/events/index.ts";
import { decodeEvent, encodeEvent } from "../libs/codec/index.ts";
import { CodecError } from "../libs/errors.ts";
import { DEFAULT_TASK_OPTIONS, type DagSpec, type TaskSpec } from "../libs/core/spec.ts";
import { ReadModel } from "../libs/store/index.ts";
import { driveRun } from "./helpers/drive.ts";
import { firstDifference } from "../libs/store/digest.ts";
import { ProjectionFold } from "../services/projector/fold.ts";

const task = (id: string, part: Partial<TaskSpec> = {}): TaskSpec => ({
  id, operator: "function", args: {}, mapping: null, group: null, upstream: [], options: DEFAULT_TASK_OPTIONS, ...part,
});
const spec: DagSpec = {
  id: "d", description: null, startDate: null, catchup: false, runTimeoutMs: null, params: null, groups: [],
  tasks: [task("fit", { mapping: { kind: "product", kwargs: { x: { kind: "literal", value: [1, 2] } } }, options: { ...DEFAULT_TASK_OPTIONS, retries: 1 } })],
};

const file = (name: string, tryNumber: number, mapIndex = 0): ArtifactRef => ({
  name, contentType: "text/plain", bytes: name.length, object: `R/fit/${mapIndex}/${tryNumber}/u/${name}`,
});
const ok = (mapIndex: number, tryNumber: number, artifacts?: ArtifactRef[]): RunEvent => ({
  type: "InstanceSucceeded", runId: "R", taskId: "fit", mapIndex, try: tryNumber, result: mapIndex, worker: "w", startedAt: 5, at: 6,
  ...(artifacts ? { artifacts } : {}),
});
const failed = (mapIndex: number, tryNumber: number, artifacts?: ArtifactRef[]): RunEvent => ({
  type: "InstanceFailed", runId: "R", taskId: "fit", mapIndex, try: tryNumber, error: { name: "Error", message: "boom" }, worker: "w", startedAt: 5, at: 6,
  ...(artifacts ? { artifacts } : {}),
});

/** The whole log of a run: the request, then each given event followed by what the coordinator decides after it. */
function logOf(...events: RunEvent[]): { log: RunEvent[]; state: RunState } {
  const log: RunEvent[] = [];
  const state = driveRun(spec, events, (event) => log.push(event));
  return { log, state };
}

// fit[0] fails its first try after writing a file, writes another on its second; fit[1] writes one; then the whole task is cleared and runs again.
const history = [
  failed(0, 1, [file("try1.txt", 1)]),
  ok(1, 1, [file("b.bin", 1, 1), file("a.txt", 1, 1)]),
  ok(0, 2, [file("try2.txt", 2)]),
  { type: "ClearRequested", runId: "R", taskId: "fit", mapIndexes: null, downstream: false, at: 20 } as RunEvent,
];

test("every try's artifacts stay listed: a retry's beside the first try's, and both after a clear of the whole task", () => {
  const before = logOf(...history.slice(0, 3)).state;
  assert.deepEqual(runArtifacts(before).map((a) => [a.mapIndex, a.try, a.name]), [[0, 1, "try1.txt"], [0, 2, "try2.txt"], [1, 1, "a.txt"], [1, 1, "b.bin"]]);

  const cleared = logOf(...history).state; // cleared and expanded again: its new tries run
  assert.equal(cleared.tasks["fit"]!.instances![0]!.try, 3);
  assert.deepEqual(runArtifacts(cleared), runArtifacts(before));
  assert.deepEqual(runArtifacts(cleared, { taskId: "fit", mapIndex: 1 }).map((a) => a.object), ["R/fit/1/1/u/a.txt", "R/fit/1/1/u/b.bin"]);
});

test("a second outcome for the same try (another copy of it) adds none of its artifacts", () => {
  const { state } = logOf(ok(0, 1, [file("first.txt", 1)]), ok(0, 1, [file("copy.txt", 1)]));
  assert.deepEqual(runArtifacts(state).map((a) => a.name), ["first.txt"]);
});

test("the coordinator's fold keeps no artifacts", () => {
  let state: RunState | undefined;
  for (const e of logOf(ok(0, 1, [file("x.txt", 1)])).log) state = evolve(state, e, DECIDING);
  assert.deepEqual(runArtifacts(state!), []);
});

test("the artifacts table is the same whether the log is projected an event at a time or in one batch", () => {
  const { log } = logOf(...history, ok(0, 3, [file("after-clear.txt", 3)]));
  const project = (batch: number) => {
    const model = new ReadModel(":memory:");
    const fold = new ProjectionFold(model, { keepFinished: true }); // as a replay: a clear reopens a finished run
    log.forEach((e, n) => {
      fold.apply(n + 1, e);
      if ((n + 1) % batch === 0) fold.commit();
    });
    fold.commit();
    return model;
  };
  const each = project(1);
  const whole = project(log.length);
  assert.equal(firstDifference(each.db, whole.db), undefined);
  const rows = whole.db.prepare("SELECT map_index, try, name FROM artifacts ORDER BY map_index, try, name").raw().all();
  assert.deepEqual(rows, [[0, 1, "try1.txt"], [0, 2, "try2.txt"], [0, 3, "after-clear.txt"], [1, 1, "a.txt"], [1, 1, "b.bin"]]);
  each.close();
  whole.close();
});

test("the codec reads an outcome's artifacts and refuses a malformed list", () => {
  const event = ok(0, 1, [file("a.txt", 1)]);
  const { data, type } = encodeEvent(event);
  assert.deepEqual(decodeEvent(data, type), event);
  const bad = (artifacts: unknown) => encodeEvent({ ...event, artifacts } as unknown as RunEvent);
  assert.throws(() => decodeEvent(bad("a.txt").data, "InstanceSucceeded"), (e: Error) => e instanceof CodecError && /'artifacts' should be a list/.test(e.message));
  assert.throws(() => decodeEvent(bad([{ name: "a.txt", bytes: 1, object: "o" }]).data, "InstanceSucceeded"), /artifact 0: field 'contentType' should be a string/);
});

test("artifact names are plain file names; content types are media types with no line breaks", () => {
  for (const name of ["report.html", "model-3.bin", "a_b.tar.gz", "README"]) assert.equal(artifactNameProblem(name), undefined, name);
  for (const name of ["../escape.txt", "a/b", "a\\b", "*.txt", "a>b", ".hidden", "two words", "", "x".repeat(201)]) {
    assert.match(artifactNameProblem(name) ?? "", /artifact name/, JSON.stringify(name));
  }
  assert.match(artifactNameProblem("../escape.txt")!, /not a plain file name: use letters, digits, '.', '_' and '-'/);
  for (const type of ["text/csv", "image/png", "application/json; charset=utf-8", 'text/plain; charset="utf-8"']) assert.equal(contentTypeProblem(type), undefined, type);
  for (const type of ["csv", "text/html\r\nset-cookie: x=1", "text/plain; charset", ""]) assert.match(contentTypeProblem(type) ?? "", /is not a media type/, JSON.stringify(type));
});

test("workers whose last beat is older than the bucket's TTL are not live; the rest are listed by name with their age", () => {
  const beat = (name: string): WorkerBeat => ({ name, host: "h", pid: 1, queues: ["q"], concurrency: 4, running: 0, startedAt: 0, at: 0 });
  const live = liveWorkers([
    { key: "k2", beat: beat("b"), storedAt: 9_000 },
    { key: "k1", beat: beat("a"), storedAt: 4_000 },
    { key: "k3", beat: beat("c"), storedAt: 1_000 },
  ], 10_000, 8_000);
  assert.deepEqual(live.map((w) => [w.name, w.ageMs]), [["a", 6_000], ["b", 1_000]]);
});
