/** Starting a run and waiting for its end: shared by `run`, `trigger` and the tests. */
import { ulid } from "ulid";
import { confFor, DECIDING, evolve, FINISHED_RUN_STATES, type RunState } from "../../libs/core/index.ts";
import { decodeEvent } from "../../libs/codec/index.ts";
import { isRunEvent, type DagRegistered, type RunEvent, type RunRequested } from "../../libs/events/index.ts";
import type { DagSpec } from "../../libs/core/spec.ts";
import { HEADERS, isToken, msgIds, STREAMS, subjects } from "../../libs/names/index.ts";
import { appendEvent, decodeRecord, followEvents, lastLogSeq, logBadEvent, readRecords, type Nats } from "../../libs/nats/index.ts";
import { createLogger, type Logger } from "../../libs/log/index.ts";
import { BadInputError } from "../../libs/errors.ts";

export type RunRequest = { dagId: string; version: string; spec: DagSpec; conf: Record<string, unknown> };

/** Appends a RunRequested; the conf is checked against the DAG's params first (BadInputError). */
export async function requestRun(nats: Nats, request: RunRequest, now = Date.now): Promise<string> {
  const conf = confFor(request.spec, request.conf);
  const runId = ulid();
  const at = now();
  // A manual run is dated when it was triggered: its logical date and its (empty) data interval are that instant, as Airflow's.
  await appendEvent(
    nats,
    {
      type: "RunRequested", runId, dagId: request.dagId, dagVersion: request.version, spec: request.spec, conf, at,
      runType: "manual", logicalDate: at, dataIntervalStart: at, dataIntervalEnd: at,
    },
    { msgId: msgIds.run(runId), expectLastSubjectSeq: 0 },
  );
  return runId;
}

/**
 * Folds the run's events from the log until it finishes (after `afterSeq`: a
 * cleared run finishes again); `watch` sees the state after each event.
 */
export async function waitForRun(nats: Nats, runId: string, log?: Logger, afterSeq = 0, watch?: (state: RunState) => void): Promise<RunState> {
  // A logger is made only if a bad message ever shows up: on a TTY each one starts a thread.
  const onBad: Parameters<typeof followEvents>[3] = (seq, err) => logBadEvent(log ?? createLogger("cli", "warn"))(seq, err);
  const follow = await followEvents(nats.js, subjects.run(runId), 1, onBad);
  let state: RunState | undefined;
  try {
    for await (const { seq, event } of follow) {
      if (!event) continue;
      state = evolve(state, event as RunEvent);
      if (state && seq > afterSeq && FINISHED_RUN_STATES.has(state.state)) return state;
      if (state) watch?.(state);
    }
  } finally {
    await follow.stop();
  }
  throw new Error(`stopped following run ${runId} before it finished`);
}

/** A run from its requests and the coordinator's decisions only: its state and times, without one outcome per instance. */
export async function decidedRun(nats: Nats, runId: string): Promise<RunState | undefined> {
  const follow = await followEvents(nats.js, [subjects.requests(runId), subjects.coordinator(runId)], 1, logBadEvent(createLogger("cli", "warn")));
  let state: RunState | undefined;
  try {
    for await (const { event, caughtUp } of follow) {
      if (event && isRunEvent(event)) state = evolve(state, event, DECIDING);
      if (caughtUp) break;
    }
  } finally {
    await follow.stop();
  }
  return state;
}

/** Run requests from the log's end backwards, in windows that grow fourfold (recent runs cost a little). */
export async function* requestsNewestFirst(nats: Nats): AsyncGenerator<RunRequested> {
  let to = await lastLogSeq(nats);
  for (let window = 256; to >= 1; window *= 4) {
    const from = Math.max(1, to - window + 1);
    const found: RunRequested[] = [];
    for await (const record of readRecords(nats, { filter: subjects.allRequests, from, to })) {
      if (record.type !== "RunRequested") continue; // clears, marks and cancels: no need to decode them
      const event = decodeRecord(record);
      if (event.type === "RunRequested") found.push(event);
    }
    yield* found.reverse();
    to = from - 1;
  }
}

/** The newest registration of a DAG on the stack, from the log. */
export async function registeredDag(nats: Nats, dagId: string): Promise<DagRegistered> {
  // The id becomes a subject token: `>` would name every DAG's registration (the web API passes a URL's segment).
  if (!isToken(dagId)) throw new BadInputError(`'${dagId}' is not a valid DAG id: use letters, digits, '_' and '-' only`);
  const last = await nats.jsm.streams.getMessage(STREAMS.events, { last_by_subj: subjects.dagRegistered(dagId) });
  if (last) {
    const event = decodeEvent(last.data, last.header.get(HEADERS.eventType) || undefined);
    if (event.type === "DagRegistered") return event;
  }
  throw new BadInputError(`DAG '${dagId}' is not registered on this stack; start a worker whose --dags folder holds it`);
}

/** `--conf` must be a JSON object; say what was wrong and what to pass instead. */
export function parseConf(text: string | undefined): Record<string, unknown> {
  if (text === undefined) return {};
  if (Buffer.byteLength(text) > 1_000_000) throw new BadInputError(`--conf is ${Buffer.byteLength(text)} bytes, over the 1 MB limit; pass large inputs by reference (a path or URL)`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new BadInputError(`--conf is not valid JSON (${(err as Error).message}); pass an object, e.g. --conf '{"n": 3}'`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new BadInputError(`--conf must be a JSON object, got ${Array.isArray(value) ? "an array" : value === null ? "null" : typeof value}; e.g. --conf '{"n": 3}'`);
  }
  return value as Record<string, unknown>;
}
