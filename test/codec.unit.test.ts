import { test } from "node:test";
import assert from "node:assert/strict";
import {
  decodeEvent, decodeLogLine, decodeValue, decodeWork, encodeEvent, encodeLogLine, encodeTaskValue, encodeValue, encodeWork, unstorable,
} from "../libs/codec/index.ts";
import { Deferred } from "../libs/core/expand.ts";
import { iteratedOutputs, StoredValue } from "../libs/core/stored.ts";
import { dag, task, zip } from "../libs/sdk/index.ts";
import { CodecError } from "../libs/errors.ts";
import { SCHEMA_VERSION, type MapflowEvent } from "../libs/events/index.ts";

test("events round-trip through msgpack with their type and schema version beside them", () => {
  const event: MapflowEvent = { type: "TaskExpanded", runId: "R", taskId: "add", count: 6, at: 1 };
  const encoded = encodeEvent(event);
  assert.equal(encoded.type, "TaskExpanded");
  assert.equal(encoded.schemaVersion, SCHEMA_VERSION);
  assert.deepEqual(decodeEvent(encoded.data, encoded.type, encoded.schemaVersion), event);
});

test("decoding validates the shape instead of trusting it", () => {
  const bogus = encodeValue({ type: "TaskExpanded", runId: "R", taskId: "add", at: 1 });
  assert.throws(() => decodeEvent(bogus, "TaskExpanded"), (e: unknown) => e instanceof CodecError && /field 'count' should be a number/.test(e.message));
  assert.throws(() => decodeEvent(encodeValue({ type: "Nope" }), "Nope"), /unknown or mismatched type 'Nope'/);
  assert.throws(() => decodeEvent(new Uint8Array([0xc1]), "TaskExpanded"), /not valid msgpack/);
  assert.throws(() => decodeWork(encodeValue([1, 2])), /expected a map, got an array/);
  const failed = { type: "InstanceFailed", runId: "R", taskId: "t", mapIndex: 0, try: 1, worker: "w", startedAt: 1, error: { name: "Error", message: "x" }, at: 2 };
  assert.equal(decodeEvent(encodeValue({ ...failed, noRetry: true }), "InstanceFailed").type, "InstanceFailed");
  assert.throws(() => decodeEvent(encodeValue({ ...failed, noRetry: "yes" }), "InstanceFailed"), /InstanceFailed: field 'noRetry' should be a boolean, got string/);
});

test("a task's log line round-trips, with or without fields", () => {
  const line = { at: 1700000000000, level: "info", msg: "working on item", fields: { item: "a", nested: { n: [1, 2] } } } as const;
  assert.deepEqual(decodeLogLine(encodeLogLine(line)), line);
  assert.deepEqual(decodeLogLine(encodeLogLine({ at: 1, level: "warn", msg: "" })), { at: 1, level: "warn", msg: "" });
});

test("a malformed log line is refused with what is wrong", () => {
  const refused = (value: unknown, why: RegExp) =>
    assert.throws(() => decodeLogLine(encodeValue(value)), (e: unknown) => e instanceof CodecError && why.test(e.message));
  refused({ at: 1, level: "info" }, /field 'msg' should be a string/);
  refused({ at: "yesterday", level: "info", msg: "x" }, /field 'at' should be a number/);
  refused({ at: 1, level: "loud", msg: "x" }, /unknown level 'loud'/);
  refused({ at: 1, level: "info", msg: "x", fields: ["a"] }, /'fields' should be a map, got an array/);
  refused(["a"], /expected a map/);
  assert.throws(() => decodeLogLine(new Uint8Array([0xc1])), (e: unknown) => e instanceof CodecError && /not valid msgpack/.test(e.message));
});

test("a log written by a newer schema is refused with advice, not misread", () => {
  const encoded = encodeEvent({ type: "RunFinished", runId: "R", state: "success", at: 1 });
  assert.throws(() => decodeEvent(encoded.data, encoded.type, SCHEMA_VERSION + 1), /newer than this mapflow understands/);
});

test("values that cannot travel are caught before they are appended", () => {
  assert.throws(() => encodeValue({ f: () => 1 }));
});

test("a schema 1 RunRequested (tasks with `expand`) is upcast to today's spec shape on read", () => {
  const v1 = {
    type: "RunRequested", runId: "R", dagId: "d", dagVersion: "v", conf: {}, at: 1,
    spec: {
      id: "d", description: null, startDate: null, catchup: false,
      tasks: [{ id: "add", operator: "function", args: {}, expand: { x: { kind: "literal", value: [1, 2] } }, upstream: [], options: { retries: 0, retryDelayMs: 0, timeoutMs: null, queue: "default", triggerRule: "all_success", maxMapLength: 100000 } }],
    },
  };
  const event = decodeEvent(encodeValue(v1), "RunRequested", 1);
  assert.equal(event.type, "RunRequested");
  const spec = (event as Extract<MapflowEvent, { type: "RunRequested" }>).spec;
  assert.deepEqual(spec.tasks[0]!.mapping, { kind: "product", kwargs: { x: { kind: "literal", value: [1, 2] } } });
  assert.equal(spec.tasks[0]!.group, null);
  assert.equal(spec.tasks[0]!.options.retryExponentialBackoff, false);
  assert.equal(spec.tasks[0]!.options.maxMapLength, 100000);
  assert.deepEqual(spec.groups, []);
});

test("an out.map item travels in a work item as its own extension type, never confused with user data", () => {
  const item = {
    runId: "R", dagId: "d", dagVersion: "v", taskId: "t", operator: "function", queue: "default", mapIndex: 0, try: 1,
    args: { a: new Deferred("map:0", [1, new Deferred("map:1", { fn: "x", input: 2 })]), look: { fn: "map:0", input: 3 } },
    transforms: true, conf: {}, timeoutMs: null, notBefore: 0,
  } as const;
  const back = decodeWork(encodeWork(item as never));
  const a = back.args.a as Deferred;
  assert.ok(a instanceof Deferred);
  assert.equal(a.fn, "map:0");
  assert.ok((a.input as unknown[])[1] instanceof Deferred);
  assert.ok(!(back.args.look instanceof Deferred), "a user object shaped like one stays plain data");
});

test("a stored value travels as a reference of its own type; a user object shaped like one stays data", () => {
  const lookalike = { $stored: "results/x", bytes: 3 };
  const decoded = decodeValue(encodeValue([new StoredValue("results/R/big/1/1/01J", 2_000_000), lookalike])) as unknown[];
  assert.ok(decoded[0] instanceof StoredValue);
  assert.deepEqual([(decoded[0] as StoredValue).key, (decoded[0] as StoredValue).bytes], ["results/R/big/1/1/01J", 2_000_000]);
  assert.ok(!(decoded[1] instanceof StoredValue));
  assert.deepEqual(decoded[1], lookalike);
  assert.throws(() => (decoded[0] as StoredValue).value(), /read before it was fetched/);
  assert.equal(JSON.stringify(decoded[0]), '{"$stored":"results/R/big/1/1/01J","bytes":2000000}');
});

test("the coordinator fetches exactly the outputs that expansion looks inside", () => {
  const spec = dag({ id: "iterated" }, () => {
    const list = task("list", () => [1, 2])({});
    const other = task("other", () => [3])({});
    const whole = task("whole", () => "w")({});
    const each = task("each", ({ x }: { x: number }) => x).expand({ x: list });
    task("zipped", ({ p }: { p: unknown }) => p).expand({ p: zip(other, each) });
    task("reduce", ({ xs, w }: { xs: number[]; w: string }) => xs.length + w.length)({ xs: each, w: whole });
  }).spec;
  assert.deepEqual([...iteratedOutputs(spec)].sort(), ["each", "list", "other"]);
});

test("a value a task hands over is refused, saying where and what to return instead, when msgpack would not carry it as it is", () => {
  const circular: Record<string, unknown> = { a: [1] };
  (circular["a"] as unknown[]).push({ back: circular });
  let deep: unknown = 1;
  for (let i = 0; i < 101; i++) deep = [deep];
  const refused: [unknown, string][] = [
    [() => 1, "result is a function"],
    [{ "odd key": Symbol("s") }, 'result["odd key"] is a symbol'],
    [{ big: 10n }, "result.big is a BigInt (10n); return it as a string, or as a number when it fits"],
    [circular, "result.a[1].back refers back to result, which contains it, so it has no end"],
    [deep, `result${"[0]".repeat(100)} is nested more than 100 levels deep`],
    [[new Set([1])], "result[0] is a Set (it would arrive as {}); return [...set]"],
    [{ p: Promise.resolve() }, "result.p is a Promise (it would arrive as {}); await it before returning"],
    [new Float64Array([1.5]), "result is a Float64Array (it would arrive as its raw bytes); return a plain array, or a Uint8Array of bytes"],
    [new Error("x"), "result is an Error (it would arrive as {}); throw it to fail the task, or return its message"],
  ];
  for (const [value, message] of refused) {
    assert.equal(unstorable(value, "result"), message);
    assert.throws(() => encodeTaskValue(value, "result"), (e: unknown) => e instanceof CodecError && e.message === message);
  }

  const shared = { n: 1 };
  const fine = { when: new Date(0), bytes: Buffer.from([1]), n: NaN, inf: -Infinity, none: null, gone: undefined, twice: [shared, shared], nested: [[{ s: "x" }]] };
  assert.equal(unstorable(fine, "result"), undefined, "plain data, a value met twice (not inside itself), a Date, bytes, NaN all pass");
  const back = decodeValue(encodeTaskValue(fine, "result")) as Record<string, unknown>;
  assert.deepEqual(back["when"], new Date(0));
  assert.ok(Number.isNaN(back["n"]));
  assert.ok(!("gone" in back));
});
