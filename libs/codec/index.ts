/**
 * Bytes ↔ values at the wire boundary. Every payload is msgpack; an event's
 * type and schema version travel in headers so a reader can route and
 * upcast without decoding the body first. Decoding validates the shape, so
 * nothing past this module casts a payload.
 */
import { Encoder, Decoder, ExtensionCodec } from "@msgpack/msgpack";
import { EVENT_TYPES, SCHEMA_VERSION, type EventType, type MapflowEvent } from "../events/index.ts";
import type { WorkItem } from "../core/work.ts";
import { isLogLevel, type LogLine } from "../core/logline.ts";
import type { WorkerBeat } from "../core/presence.ts";
import { Deferred } from "../core/expand.ts";
import { StoredValue } from "../core/stored.ts";
import { DEFAULT_TASK_OPTIONS } from "../core/spec.ts";
import { CodecError, SchemaTooNewError } from "../errors.ts";
import { unstorable } from "./storable.ts";

export { unstorable };

/**
 * An `out.map(fn)` item and a reference to a stored value travel as their
 * own msgpack extension types, so no user value can be mistaken for one.
 */
const DEFERRED_EXT = 1;
const STORED_EXT = 2;
const extensionCodec = new ExtensionCodec();
// ignoreUndefined: a task returning undefined records no result field, like JSON.
const encoder: Encoder = new Encoder({ ignoreUndefined: true, extensionCodec });
const decoder: Decoder = new Decoder({ extensionCodec });
extensionCodec.register({
  type: DEFERRED_EXT,
  encode: (value) => (value instanceof Deferred ? encoder.encode([value.fn, value.input]) : null),
  decode: (data) => {
    const pair = decoder.decode(data);
    if (!Array.isArray(pair) || typeof pair[0] !== "string") throw new CodecError("a deferred transform item is malformed");
    return new Deferred(pair[0], pair[1]);
  },
});
extensionCodec.register({
  type: STORED_EXT,
  encode: (value) => (value instanceof StoredValue ? encoder.encode([value.key, value.bytes]) : null),
  decode: (data) => {
    const pair = decoder.decode(data);
    if (!Array.isArray(pair) || typeof pair[0] !== "string" || typeof pair[1] !== "number") throw new CodecError("a stored value reference is malformed");
    return new StoredValue(pair[0], pair[1]);
  },
});

export type EncodedEvent = { readonly type: EventType; readonly schemaVersion: number; readonly data: Uint8Array };

export function encodeEvent(event: MapflowEvent): EncodedEvent {
  return { type: event.type, schemaVersion: SCHEMA_VERSION, data: encoder.encode(event) };
}

/** Turns an event written by an older schema into the current shape, one version step each. */
type Upcaster = (raw: Record<string, unknown>) => Record<string, unknown>;
type Raw = Record<string, unknown>;

/** v1 specs had `expand` (a product) on tasks, no groups, and fewer options. */
function specV1toV2(spec: Raw): Raw {
  const tasks = (spec["tasks"] as Raw[]).map(({ expand, ...task }) => ({
    ...task,
    mapping: expand ? { kind: "product", kwargs: expand } : null,
    group: null,
    options: { ...DEFAULT_TASK_OPTIONS, ...(task["options"] as Raw) },
  }));
  return { runTimeoutMs: null, params: null, ...spec, tasks, groups: [] };
}

const UPCASTERS: ReadonlyMap<number, Upcaster> = new Map([
  [1, (raw: Raw) => (typeof raw["spec"] === "object" && raw["spec"] !== null ? { ...raw, spec: specV1toV2(raw["spec"] as Raw) } : raw)],
]);

const REQUIRED: Record<EventType, Record<string, "string" | "number" | "object" | "boolean">> = {
  DagRegistered: { dagId: "string", version: "string", spec: "object", at: "number" },
  DagPaused: { dagId: "string", paused: "boolean", at: "number" },
  RunsPurged: { runIds: "object", before: "number", at: "number" },
  RunRequested: { runId: "string", dagId: "string", dagVersion: "string", spec: "object", conf: "object", at: "number" },
  TaskExpanded: { runId: "string", taskId: "string", count: "number", at: "number" },
  TaskScheduled: { runId: "string", taskId: "string", at: "number" },
  TaskSkipped: { runId: "string", taskId: "string", state: "string", at: "number" },
  TaskFailed: { runId: "string", taskId: "string", error: "object", at: "number" },
  InstancesQueued: { runId: "string", taskId: "string", mapIndexes: "object", at: "number" },
  InstanceStarted: { runId: "string", taskId: "string", mapIndex: "number", try: "number", worker: "string", startedAt: "number", at: "number" },
  InstanceSucceeded: { runId: "string", taskId: "string", mapIndex: "number", try: "number", worker: "string", startedAt: "number", at: "number" },
  InstanceFailed: { runId: "string", taskId: "string", mapIndex: "number", try: "number", worker: "string", startedAt: "number", error: "object", at: "number" },
  InstancesFinished: { runId: "string", taskId: "string", worker: "string", outcomes: "object", at: "number" },
  InstanceRetried: { runId: "string", taskId: "string", mapIndex: "number", try: "number", notBefore: "number", at: "number" },
  InstancesRerun: { runId: "string", taskId: "string", mapIndexes: "object", at: "number" },
  ClearRequested: { runId: "string", taskId: "string", downstream: "boolean", at: "number" },
  InstanceMarked: { runId: "string", taskId: "string", mapIndex: "number", state: "string", at: "number" },
  RunCancelRequested: { runId: "string", at: "number" },
  RunTimedOut: { runId: "string", error: "object", at: "number" },
  RunFinished: { runId: "string", state: "string", at: "number" },
};

/** Fields an event may leave out (added after it was first logged), checked when present. */
const OPTIONAL: Partial<Record<EventType, Record<string, "string" | "number" | "boolean">>> = {
  RunRequested: { runType: "string", logicalDate: "number", dataIntervalStart: "number", dataIntervalEnd: "number" },
  InstanceFailed: { noRetry: "boolean" },
};

/** Fields a message must carry and the `typeof` of each, as pairs: checked for every message, so no object is made per check. */
type FieldKinds = readonly (readonly [field: string, kind: string])[];
function fieldKinds(fields: Record<string, string>): FieldKinds {
  return Object.entries(fields);
}

const REQUIRED_KINDS = Object.fromEntries(Object.entries(REQUIRED).map(([type, fields]) => [type, fieldKinds(fields)])) as Record<EventType, FieldKinds>;
const OPTIONAL_KINDS = Object.fromEntries(Object.entries(OPTIONAL).map(([type, fields]) => [type, fieldKinds(fields)])) as Partial<Record<EventType, FieldKinds>>;
const FINISHED_FIELDS = fieldKinds({ mapIndex: "number", try: "number", startedAt: "number", at: "number" });
const FINISHED_OPTIONAL = fieldKinds({ label: "string", error: "object", noRetry: "boolean" });
const ARTIFACT_FIELDS = fieldKinds({ name: "string", contentType: "string", bytes: "number", object: "string" });
const WORK_FIELDS = fieldKinds({
  runId: "string", dagId: "string", dagVersion: "string", taskId: "string",
  mapIndex: "number", try: "number", args: "object", notBefore: "number",
});
const LOG_LINE_FIELDS = fieldKinds({ at: "number", level: "string", msg: "string" });
const BEAT_FIELDS = fieldKinds({ name: "string", host: "string", pid: "number", queues: "object", concurrency: "number", running: "number", startedAt: "number", at: "number" });
const EVENT_TYPE_SET: ReadonlySet<string> = new Set(EVENT_TYPES);

function isEventType(value: unknown): value is EventType {
  return typeof value === "string" && EVENT_TYPE_SET.has(value);
}

/** `present`: check only the fields the message has (its optional ones). */
function checkFields(what: string, raw: Record<string, unknown>, fields: FieldKinds, present = false): void {
  for (let n = 0; n < fields.length; n++) {
    const field = fields[n]![0];
    const kind = fields[n]![1];
    const value = raw[field];
    if (present && value === undefined) continue;
    if (typeof value !== kind || value === null) {
      throw new CodecError(`${what}: field '${field}' should be a ${kind}, got ${value === null ? "null" : typeof value}`);
    }
  }
}

function decodeObject(what: string, data: Uint8Array): Record<string, unknown> {
  let raw: unknown;
  try {
    raw = decoder.decode(data);
  } catch (cause) {
    throw new CodecError(`${what}: not valid msgpack`, { cause });
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new CodecError(`${what}: expected a map, got ${Array.isArray(raw) ? "an array" : typeof raw}`);
  }
  return raw as Record<string, unknown>;
}

/** An outcome's optional list of artifacts: each names its object, size and content type. */
function checkArtifacts(kind: string, value: unknown): void {
  if (!Array.isArray(value)) throw new CodecError(`${kind}: field 'artifacts' should be a list, got ${value === null ? "null" : typeof value}`);
  for (const [n, item] of value.entries()) {
    if (typeof item !== "object" || item === null || Array.isArray(item)) throw new CodecError(`${kind}: artifact ${n} should be a map`);
    checkFields(`${kind}: artifact ${n}`, item as Record<string, unknown>, ARTIFACT_FIELDS);
  }
}

/** Each outcome inside InstancesFinished, checked as its single event's fields are. */
function checkFinished(value: unknown): void {
  if (!Array.isArray(value) || value.length === 0) throw new CodecError(`InstancesFinished: field 'outcomes' should be a non-empty list`);
  for (let n = 0; n < value.length; n++) {
    const outcome = value[n] as unknown;
    if (typeof outcome !== "object" || outcome === null || Array.isArray(outcome)) throw new CodecError(`InstancesFinished: outcome ${n} should be a map`);
    const raw = outcome as Record<string, unknown>;
    checkFields(`InstancesFinished: outcome ${n}`, raw, FINISHED_FIELDS);
    checkFields(`InstancesFinished: outcome ${n}`, raw, FINISHED_OPTIONAL, true);
    if (raw["artifacts"] !== undefined) checkArtifacts(`InstancesFinished: outcome ${n}`, raw["artifacts"]);
  }
}

/**
 * Decodes one event. `type` and `schemaVersion` come from the message
 * headers; a message without them is read as the current version with the
 * type taken from the body.
 */
export function decodeEvent(data: Uint8Array, type?: string, schemaVersion: number = SCHEMA_VERSION): MapflowEvent {
  if (schemaVersion > SCHEMA_VERSION) {
    throw new SchemaTooNewError(`event schema version ${schemaVersion} is newer than this mapflow understands (${SCHEMA_VERSION}); upgrade mapflow to read this log`);
  }
  let raw = decodeObject("event", data);
  for (let v = schemaVersion; v < SCHEMA_VERSION; v++) {
    const up = UPCASTERS.get(v);
    if (up) raw = up(raw);
  }
  const kind = type ?? raw["type"];
  if (!isEventType(kind) || raw["type"] !== kind) {
    throw new CodecError(`event: unknown or mismatched type '${String(kind)}' (body says '${String(raw["type"])}')`);
  }
  checkFields(kind, raw, REQUIRED_KINDS[kind]);
  if ((kind === "InstanceSucceeded" || kind === "InstanceFailed") && raw["artifacts"] !== undefined) checkArtifacts(kind, raw["artifacts"]);
  if (kind === "InstancesFinished") checkFinished(raw["outcomes"]);
  const optional = OPTIONAL_KINDS[kind];
  if (optional) checkFields(kind, raw, optional, true);
  return raw as MapflowEvent;
}

export function encodeWork(item: WorkItem): Uint8Array {
  return encoder.encode(item);
}

export function decodeWork(data: Uint8Array): WorkItem {
  const raw = decodeObject("work item", data);
  checkFields("work item", raw, WORK_FIELDS);
  return raw as WorkItem;
}

export function encodeLogLine(line: LogLine): Uint8Array {
  return encoder.encode(line);
}

export function decodeLogLine(data: Uint8Array): LogLine {
  const raw = decodeObject("log line", data);
  checkFields("log line", raw, LOG_LINE_FIELDS);
  if (!isLogLevel(raw["level"])) throw new CodecError(`log line: unknown level '${String(raw["level"])}'`);
  const fields = raw["fields"];
  if (fields !== undefined && (typeof fields !== "object" || fields === null || Array.isArray(fields))) {
    throw new CodecError(`log line: 'fields' should be a map, got ${fields === null ? "null" : Array.isArray(fields) ? "an array" : typeof fields}`);
  }
  return raw as LogLine;
}

export function encodeWorkerBeat(beat: WorkerBeat): Uint8Array {
  return encoder.encode(beat);
}

export function decodeWorkerBeat(data: Uint8Array): WorkerBeat {
  const raw = decodeObject("worker heartbeat", data);
  checkFields("worker heartbeat", raw, BEAT_FIELDS);
  const queues = raw["queues"];
  if (!Array.isArray(queues) || !queues.every((q) => typeof q === "string")) throw new CodecError("worker heartbeat: 'queues' should be a list of strings");
  return raw as WorkerBeat;
}

/** msgpack-decodes a value written by `encodeValue`. */
export function decodeValue(data: Uint8Array): unknown {
  return decoder.decode(data);
}

/** msgpack-encodes any value (with the same extensions as events and work). */
export function encodeValue(value: unknown): Uint8Array {
  return encoder.encode(value);
}

/**
 * msgpack-encodes a value a task hands over (its result, a `ctx.kv` value),
 * refusing one that would not arrive as it left with a CodecError that says
 * where, from `root` ("result.model is a function"): see unstorable.
 */
export function encodeTaskValue(value: unknown, root: string): Uint8Array {
  const problem = unstorable(value, root);
  if (problem) throw new CodecError(problem);
  return encoder.encode(value);
}
