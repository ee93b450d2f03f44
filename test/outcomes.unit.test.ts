// InstancesFinished: a worker's wave of outcomes in one event means what its single events would.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { JsMsg } from "@nats-io/jetstream";
import { decodeEvent, encodeEvent, encodeValue } from "../libs/codec/index.ts";
import { LogAudit, type RunState } from "../libs/core/index.ts";
import { driveRun } from "./helpers/drive.ts";
import { finishedInstance, OUTCOME_CHUNK, outcomesOf, type InstanceFailed, type InstancesFinished, type InstanceSucceeded, type RunEvent } from "../libs/events/index.ts";
import { DEFAULT_TASK_OPTIONS, type DagSpec } from "../libs/core/spec.ts";
import { CodecError } from "../libs/errors.ts";
import { subjectOf } from "../libs/nats/index.ts";
import { historyRows } from "../services/cli/audit.ts";
import { OUTCOME_BATCH_BYTES, outcomeGroups, type Finished } from "../services/worker/outcomes.ts";
import { heldWork, type Hold } from "../services/worker/held.ts";

const spec: DagSpec = {
  id: "d", description: null, startDate: null, catchup: false, runTimeoutMs: null, params: null, groups: [],
  tasks: [{
    id: "each", operator: "function", args: {}, group: null, upstream: [], options: { ...DEFAULT_TASK_OPTIONS, retries: 1 },
    mapping: { kind: "product", kwargs: { x: { kind: "literal", value: [0, 1, 2, 3] } } },
  }],
};

const ok = (mapIndex: number, tryNumber = 1): InstanceSucceeded => ({
  type: "InstanceSucceeded", runId: "R", taskId: "each", mapIndex, try: tryNumber, worker: "w", startedAt: 10 + mapIndex, at: 20 + mapIndex, result: mapIndex * 10,
});
const failed = (mapIndex: number, noRetry?: true): InstanceFailed => ({
  type: "InstanceFailed", runId: "R", taskId: "each", mapIndex, try: 1, worker: "w", startedAt: 10, at: 20, label: `x=${mapIndex}`,
  error: { name: "Error", message: "boom" }, ...(noRetry ? { noRetry } : {}),
});
const batch = (...outcomes: (InstanceSucceeded | InstanceFailed)[]): InstancesFinished => ({
  type: "InstancesFinished", runId: "R", taskId: "each", worker: "w", outcomes: outcomes.map(finishedInstance), at: 30,
});

/** The run driven through `events` (and the coordinator's decisions), and what the log audit found. */
function run(...events: RunEvent[]): { state: RunState; findings: LogAudit["findings"] } {
  const audit = new LogAudit();
  let seq = 0;
  const state = driveRun(spec, events, (event, before) => audit.check(++seq, before, event), 40);
  return { state, findings: audit.findings };
}

test("given a wave's outcomes in one InstancesFinished, when folded, then the run is as its single events leave it", () => {
  const outcomes = [ok(0), failed(1), failed(2, true), ok(3)];
  const singles = run(...outcomes);
  const batched = run(batch(...outcomes));
  assert.deepEqual(batched.state.tasks["each"], singles.state.tasks["each"]);
  const instances = batched.state.tasks["each"]!.instances!;
  assert.deepEqual(instances.map((i) => [i.state, i.try]), [["success", 1], ["queued", 2], ["failed", 1], ["success", 1]], "one retried, one not (noRetry), as singles");
  assert.equal(instances[1]!.label, "x=1");
  assert.equal(instances[3]!.result, 30);
  assert.deepEqual(batched.findings, []);
});

test("given a try recorded in a batch, when a second copy of it comes alone, then the fold keeps the first and the audit says so", () => {
  const { state, findings } = run(batch(ok(0), ok(1)), { ...ok(1), result: "late copy" });
  assert.equal(state.tasks["each"]!.instances![1]!.result, 10);
  assert.deepEqual(findings.map((f) => [f.mapIndex, f.try, f.problem]), [[1, 1, "a second result for the same try"]]);
});

test("InstancesFinished round-trips through the codec, on its chunk's subject, and gives back its single events", () => {
  const event = batch(ok(64), failed(65, true), { ...ok(66), result: undefined });
  const encoded = encodeEvent(event);
  const decoded = decodeEvent(encoded.data, encoded.type, encoded.schemaVersion);
  assert.deepEqual(decoded, JSON.parse(JSON.stringify(event)), "as made, less the fields left undefined");
  assert.equal(subjectOf(event), `mf.evt.run.R.inst.each.c${Math.floor(64 / OUTCOME_CHUNK)}`);
  const [first, second, third] = outcomesOf(event);
  assert.deepEqual({ ...first }, { ...ok(64), label: undefined, artifacts: undefined });
  assert.equal(second!.type, "InstanceFailed");
  assert.equal(second!.type === "InstanceFailed" && second!.noRetry, true);
  assert.equal(third!.type === "InstanceSucceeded" && third!.result, undefined);
});

test("a malformed InstancesFinished is refused with what is wrong", () => {
  const refused = (outcomes: unknown, why: RegExp) =>
    assert.throws(() => decodeEvent(encodeValue({ ...batch(ok(0)), outcomes }), "InstancesFinished"), (e: unknown) => e instanceof CodecError && why.test(e.message));
  refused([], /field 'outcomes' should be a non-empty list/);
  refused("all of them", /field 'outcomes' should be a object, got string/);
  refused([finishedInstance(ok(0)), 7], /outcome 1 should be a map/);
  refused([{ mapIndex: 0, startedAt: 1, at: 2 }], /outcome 0: field 'try' should be a number/);
  refused([{ ...finishedInstance(failed(0)), error: "boom" }], /outcome 0: field 'error' should be a object/);
  refused([{ ...finishedInstance(failed(0)), noRetry: "yes" }], /outcome 0: field 'noRetry' should be a boolean/);
  refused([{ ...finishedInstance(ok(0)), artifacts: [{ name: "a" }] }], /outcome 0: artifact 0: field 'contentType' should be a string/);
});

test("a worker's wave is grouped by run, task and chunk of map indexes; an outcome that must keep its own id goes alone", () => {
  const msg = {} as JsMsg;
  const finished = (event: InstanceSucceeded, options: { repeat?: boolean; bytes?: number } = {}): Finished =>
    ({ msg, hold: {} as Hold, event, bytes: options.bytes ?? 8, repeat: options.repeat ?? false, done: () => {} });
  const other = { ...ok(1), runId: "S" };
  const wave = [finished(ok(0)), finished(ok(OUTCOME_CHUNK)), finished(ok(1)), finished(other), finished(ok(2), { repeat: true }), finished(ok(3))];
  const groups = outcomeGroups(wave).map((g) => g.map((f) => `${f.event.runId}:${f.event.mapIndex}`));
  assert.deepEqual(groups, [["R:0", "R:1", "R:3"], [`R:${OUTCOME_CHUNK}`], ["S:1"], ["R:2"]]);

  const big = OUTCOME_BATCH_BYTES / 2;
  const sized = outcomeGroups([finished(ok(0), { bytes: big }), finished(ok(1), { bytes: big }), finished(ok(2), { bytes: 1 }), finished(ok(3), { bytes: 1 })]);
  assert.deepEqual(sized.map((g) => g.map((f) => f.event.mapIndex)), [[0, 1], [2, 3]], "a batch carries at most OUTCOME_BATCH_BYTES");
  const huge = outcomeGroups([finished(ok(0)), finished(ok(1), { bytes: OUTCOME_BATCH_BYTES + 1 }), finished(ok(2))]);
  assert.deepEqual(huge.map((g) => g.map((f) => f.event.mapIndex)), [[0, 2], [1]], "an outcome larger than a batch goes alone");
});

test("mapflow events shows an InstancesFinished as a row per outcome at its sequence, marked as one batch", () => {
  const rows = historyRows(7, 0, batch(ok(0), failed(1)));
  assert.deepEqual(rows.map((r) => [r.seq, r.type, r.mapIndex, r.try, r.worker, r.batch]), [[7, "InstanceSucceeded", 0, 1, "w", true], [7, "InstanceFailed", 1, 1, "w", true]]);
  assert.deepEqual(rows[0]!.payload, { startedAt: 10, result: 0 });
  assert.equal(historyRows(8, 0, ok(2))[0]!.batch, undefined);
});

test("a held message counts as lapsed (its outcome then goes alone) once a heartbeat came late or the connection dropped", () => {
  const held = heldWork(1000, 1000, 5000);
  try {
    const msg = { working: () => {} } as unknown as JsMsg;
    const now = Date.now();
    const a = held.hold(msg);
    const b = held.hold(msg);
    assert.equal(a.lapsed(now), false);
    assert.equal(a.lapsed(now + 5000), true, "no beat for half the ack deadline: it may have been redelivered");
    assert.equal(b.lapsed(now), false);
    held.lapseAll();
    assert.equal(b.lapsed(now), true, "after a disconnect, every message held then");
    assert.equal(held.hold(msg).lapsed(Date.now()), false, "one that arrives later is not");
  } finally {
    held.stop();
  }
});
