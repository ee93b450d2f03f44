import { test } from "node:test";
import assert from "node:assert/strict";
import { decodeEvent, decodeWork, encodeEvent, encodeValue } from "../libs/codec/index.ts";
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
});

test("a log written by a newer schema is refused with advice, not misread", () => {
  const encoded = encodeEvent({ type: "RunFinished", runId: "R", state: "success", at: 1 });
  assert.throws(() => decodeEvent(encoded.data, encoded.type, SCHEMA_VERSION + 1), /newer than this mapflow understands/);
});

test("values that cannot travel are caught before they are appended", () => {
  assert.throws(() => encodeValue({ f: () => 1 }));
});
