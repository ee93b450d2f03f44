/**
 * Every fact mapflow records, as one discriminated union. The log is the
 * truth: run state, the read model and the UI are folds of these events.
 * Times arrive as data (`at`, epoch ms), stamped by the service that
 * appends the event, so folding stays pure.
 */
import type { DagSpec } from "../core/spec.ts";

/**
 * Bump when an event's shape changes, and add an upcaster in the codec.
 * 3: a result may be a reference to the object store (msgpack extension 2),
 * which an older reader would take for plain data; v2 events need no change.
 * 4: RunsPurged (db clean), which an older projector would skip and so keep
 * rows the log no longer has; it stops instead. v3 events need no change.
 * Still 4 with schedules: RunRequested's interval fields are optional (an
 * older reader ignores them), and DagPaused is one an older reader may skip
 * (it has no paused state to keep), so an older service reading a newer log
 * carries on rather than stopping.
 * 5: InstanceFailed's `noRetry`, which an older reader would fold as up for
 * retry while the coordinator failed the instance; it stops instead. v4
 * events need no change.
 * 6: InstancesFinished, a worker's outcomes of one wave in one event, which
 * an older reader would skip and so never see those instances finish; it
 * stops instead. v5 events need no change.
 */
export const SCHEMA_VERSION = 6;

export type ErrorInfo = { readonly name: string; readonly message: string; readonly stack?: string };

export type DagRegistered = {
  readonly type: "DagRegistered";
  readonly dagId: string;
  readonly version: string;
  readonly spec: DagSpec;
  readonly at: number;
};

/**
 * An operator pauses or unpauses a DAG's schedule (Airflow's `is_paused`).
 * A paused DAG gets no scheduled runs; manual triggers still start runs.
 */
export type DagPaused = {
  readonly type: "DagPaused";
  readonly dagId: string;
  readonly paused: boolean;
  readonly at: number;
};

/** Who asked for a run: a person or tool (`trigger`, the UI), or the coordinator's schedule. */
export type RunType = "manual" | "scheduled";

export type RunRequested = {
  readonly type: "RunRequested";
  readonly runId: string;
  readonly dagId: string;
  readonly dagVersion: string;
  /** The graph the run executes, so a run stays readable after its DAG file changes. */
  readonly spec: DagSpec;
  readonly conf: Readonly<Record<string, unknown>>;
  readonly at: number;
  /*
   * Optional, so requests logged before schedules existed read unchanged:
   * absent means a manual run whose logical date and data interval are `at`.
   * All three are epoch ms, like `at`. A scheduled run covers the data
   * interval [dataIntervalStart, dataIntervalEnd) and is requested once its
   * end has passed; its logical date is the interval's start (Airflow's).
   * A manual run's logical date is its trigger time, its interval that instant.
   */
  readonly runType?: RunType;
  readonly logicalDate?: number;
  readonly dataIntervalStart?: number;
  readonly dataIntervalEnd?: number;
};

/** Instances (or group indexes) that will not run, and why: `[index, state]`. */
export type Settled = readonly (readonly [number, "skipped" | "upstream_failed"])[];

/** A mapped task's instance count is known: one event for the whole expansion, whatever the count. */
export type TaskExpanded = {
  readonly type: "TaskExpanded";
  readonly runId: string;
  readonly taskId: string;
  readonly count: number;
  /** For a task mapped inside a mapped group: instances per group index. */
  readonly groupCounts?: readonly number[];
  /**
   * Instances that will not run because their group index's upstreams failed or were skipped
   * (`[mapIndex, state]`; with `groupCounts`, `[groupIndex, state]` for indexes that got no instances).
   */
  readonly settled?: Settled;
  readonly at: number;
};

/** An unmapped task is ready: its one instance (map index -1) is queued. */
export type TaskScheduled = {
  readonly type: "TaskScheduled";
  readonly runId: string;
  readonly taskId: string;
  readonly at: number;
};

/** A task will not run because of its trigger rule. */
export type TaskSkipped = {
  readonly type: "TaskSkipped";
  readonly runId: string;
  readonly taskId: string;
  readonly state: "skipped" | "upstream_failed";
  readonly at: number;
};

/** A task failed before any instance ran (e.g. its input cannot be mapped). */
export type TaskFailed = {
  readonly type: "TaskFailed";
  readonly runId: string;
  readonly taskId: string;
  readonly error: ErrorInfo;
  readonly at: number;
};

type InstanceOutcome = {
  readonly runId: string;
  readonly taskId: string;
  readonly mapIndex: number;
  readonly try: number;
  readonly worker: string;
  readonly startedAt: number;
  readonly at: number;
};

/** A file a try wrote with `ctx.artifact`, stored in the artifacts object store under `object`. */
export type ArtifactRef = {
  readonly name: string;
  readonly contentType: string;
  readonly bytes: number;
  readonly object: string;
};

type InstanceOutcomeBase = InstanceOutcome & {
  /** The instance's `mapIndexLabel`, rendered by the worker. */
  readonly label?: string;
  /**
   * The files this try stored with `ctx.artifact`, recorded with its outcome
   * so the log says which artifacts exist (a copy of a try whose outcome was
   * not recorded leaves objects the log never names). Absent when none.
   * Optional and additive, so no schema bump: an older reader skips it and
   * misses only the artifact list, never a state.
   */
  readonly artifacts?: readonly ArtifactRef[];
};

export type InstanceSucceeded = InstanceOutcomeBase & {
  readonly type: "InstanceSucceeded";
  readonly result: unknown;
};

export type InstanceFailed = InstanceOutcomeBase & {
  readonly type: "InstanceFailed";
  readonly error: ErrorInfo;
  /**
   * The try failed in a way no retry can mend (a NonRetryableError): the
   * instance fails whatever its `retries`. Schema 5: an older reader would
   * fold it as up for retry, so it stops at it instead.
   */
  readonly noRetry?: true;
};

/** One instance's outcome inside InstancesFinished: failed when it has `error`, else succeeded. */
export type FinishedInstance = {
  readonly mapIndex: number;
  readonly try: number;
  readonly startedAt: number;
  readonly at: number;
  readonly label?: string;
  readonly artifacts?: readonly ArtifactRef[];
  readonly result?: unknown;
  readonly error?: ErrorInfo;
  readonly noRetry?: true;
};

/**
 * Outcomes of one task's instances that one worker finished together, in
 * one message: a wide map of short tasks records a wave of outcomes at
 * once, and one message each cost the log, the coordinator and the projector
 * more than the tasks did. Its instances are in one chunk of map indexes
 * (OUTCOME_CHUNK), so "has this try an outcome?" reads a chunk's few
 * messages. Means exactly what its outcomes would as single events.
 */
export type InstancesFinished = {
  readonly type: "InstancesFinished";
  readonly runId: string;
  readonly taskId: string;
  readonly worker: string;
  readonly outcomes: readonly FinishedInstance[];
  readonly at: number;
};

/** Map indexes per chunk: an InstancesFinished holds outcomes of one chunk only. */
export const OUTCOME_CHUNK = 64;

/** The chunk a map index's batched outcomes are appended under. */
export function outcomeChunk(mapIndex: number): number {
  return Math.floor(mapIndex / OUTCOME_CHUNK);
}

/** An instance's outcome, alone or in a batch: what ends a try. */
export function isOutcomeEvent(event: MapflowEvent): event is InstanceSucceeded | InstanceFailed | InstancesFinished {
  return event.type === "InstanceSucceeded" || event.type === "InstanceFailed" || event.type === "InstancesFinished";
}

/** How many events one message of the log stands for: an InstancesFinished counts as its outcomes. */
export function eventsIn(event: MapflowEvent | null): number {
  return event?.type === "InstancesFinished" ? event.outcomes.length : 1;
}

/** The try of an instance whose outcome this event records, alone or in a batch (the latest, if several); undefined for none. */
export function outcomeTry(event: MapflowEvent, taskId: string, mapIndex: number): number | undefined {
  if ((event.type === "InstanceSucceeded" || event.type === "InstanceFailed") && event.taskId === taskId && event.mapIndex === mapIndex) return event.try;
  if (event.type !== "InstancesFinished" || event.taskId !== taskId) return undefined;
  let found: number | undefined;
  for (const o of event.outcomes) if (o.mapIndex === mapIndex && (found === undefined || o.try > found)) found = o.try;
  return found;
}

/**
 * The single events InstancesFinished stands for, in its order. Literals with
 * every field (absent ones undefined), not spread copies: the coordinator
 * folds one per instance of a wide map.
 */
export function outcomesOf(event: InstancesFinished): (InstanceSucceeded | InstanceFailed)[] {
  const { runId, taskId, worker } = event;
  return event.outcomes.map((o): InstanceSucceeded | InstanceFailed =>
    o.error
      ? { type: "InstanceFailed", runId, taskId, mapIndex: o.mapIndex, try: o.try, worker, startedAt: o.startedAt, at: o.at, label: o.label, artifacts: o.artifacts, error: o.error, noRetry: o.noRetry }
      : { type: "InstanceSucceeded", runId, taskId, mapIndex: o.mapIndex, try: o.try, worker, startedAt: o.startedAt, at: o.at, label: o.label, artifacts: o.artifacts, result: o.result });
}

/**
 * An outcome as it sits inside InstancesFinished (the fields the batch does not hold once for all).
 * A literal with every field, absent ones undefined (the encoder leaves those out), as in `outcomesOf`.
 */
export function finishedInstance(event: InstanceSucceeded | InstanceFailed): FinishedInstance {
  const failed = event.type === "InstanceFailed";
  return {
    mapIndex: event.mapIndex, try: event.try, startedAt: event.startedAt, at: event.at, label: event.label, artifacts: event.artifacts,
    result: failed ? undefined : event.result, error: failed ? event.error : undefined, noRetry: failed ? event.noRetry : undefined,
  };
}

/**
 * Instances held back by `maxActivePerRun` / `maxActive` get a free slot:
 * their work is published. One event for every instance let go at once.
 */
export type InstancesQueued = {
  readonly type: "InstancesQueued";
  readonly runId: string;
  readonly taskId: string;
  readonly mapIndexes: readonly number[];
  readonly at: number;
};

/** A worker has been running a try for a while (short tries go straight to their outcome). */
export type InstanceStarted = InstanceOutcome & { readonly type: "InstanceStarted" };

/** A failed instance gets another try (its task's `retries`). */
export type InstanceRetried = {
  readonly type: "InstanceRetried";
  readonly runId: string;
  readonly taskId: string;
  readonly mapIndex: number;
  readonly try: number;
  readonly notBefore: number;
  readonly at: number;
};

/**
 * An operator re-runs a task of a finished run: all of it (`mapIndexes`
 * null: it expands again, and instances past its new length become
 * `removed`) or chosen instances (new tries; old tries stay in the log).
 * With `downstream`, tasks after it are cleared too, down to the instances
 * that derive from the chosen ones.
 */
export type ClearRequested = {
  readonly type: "ClearRequested";
  readonly runId: string;
  readonly taskId: string;
  readonly mapIndexes: readonly number[] | null;
  readonly downstream: boolean;
  readonly at: number;
};

/** An operator sets one instance's state by hand. */
export type InstanceMarked = {
  readonly type: "InstanceMarked";
  readonly runId: string;
  readonly taskId: string;
  readonly mapIndex: number;
  readonly state: "success" | "failed";
  readonly at: number;
};

/** An operator asks to stop a run; the coordinator ends it `cancelled`. */
export type RunCancelRequested = {
  readonly type: "RunCancelRequested";
  readonly runId: string;
  readonly at: number;
};

/** Cleared instances of a task get their next try (or are settled when their upstreams failed again). */
export type InstancesRerun = {
  readonly type: "InstancesRerun";
  readonly runId: string;
  readonly taskId: string;
  readonly mapIndexes: readonly number[];
  readonly settled?: Settled;
  readonly at: number;
};

/** The run passed its `runTimeoutMs`: every unfinished instance and task fails with a timeout error. */
export type RunTimedOut = {
  readonly type: "RunTimedOut";
  readonly runId: string;
  readonly error: ErrorInfo;
  readonly at: number;
};

export type RunFinished = {
  readonly type: "RunFinished";
  readonly runId: string;
  readonly state: "success" | "failed" | "cancelled";
  readonly at: number;
};

export type RunEvent =
  | RunRequested
  | TaskExpanded
  | TaskScheduled
  | TaskSkipped
  | TaskFailed
  | InstancesQueued
  | InstanceStarted
  | InstanceSucceeded
  | InstanceFailed
  | InstancesFinished
  | InstanceRetried
  | InstancesRerun
  | ClearRequested
  | InstanceMarked
  | RunCancelRequested
  | RunTimedOut
  | RunFinished;

/**
 * `mapflow db clean` removed these finished runs' events from the log (after
 * archiving them): the read model drops their rows. Appended before the purge,
 * so a rebuild of a log whose purge did not finish drops them too.
 */
export type RunsPurged = {
  readonly type: "RunsPurged";
  readonly runIds: readonly string[];
  /** The cut-off the runs ended before (epoch ms). */
  readonly before: number;
  /** Where their events were archived; null when the operator chose not to keep them. */
  readonly archive: string | null;
  readonly at: number;
};

export type MapflowEvent = DagRegistered | DagPaused | RunsPurged | RunEvent;
export type EventType = MapflowEvent["type"];

export const EVENT_TYPES: readonly EventType[] = [
  "DagRegistered",
  "DagPaused",
  "RunsPurged",
  "RunRequested",
  "TaskExpanded",
  "TaskScheduled",
  "TaskSkipped",
  "TaskFailed",
  "InstancesQueued",
  "InstanceStarted",
  "InstanceSucceeded",
  "InstanceFailed",
  "InstancesFinished",
  "InstanceRetried",
  "InstancesRerun",
  "ClearRequested",
  "InstanceMarked",
  "RunCancelRequested",
  "RunTimedOut",
  "RunFinished",
];

/** Events only the coordinator appends (fenced on the run's coordinator subject). */
export type CoordinatorEvent = Exclude<RunEvent, OperatorEvent | WorkerEvent>;
/** Requests from people and their tools (CLI, UI), appended on the run's request subject. */
export type OperatorEvent = RunRequested | ClearRequested | InstanceMarked | RunCancelRequested;
/** Events a worker appends about the work it was given. */
export type WorkerEvent = InstanceStarted | InstanceSucceeded | InstanceFailed | InstancesFinished;

export function isRunEvent(event: MapflowEvent): event is RunEvent {
  return event.type !== "DagRegistered" && event.type !== "DagPaused" && event.type !== "RunsPurged";
}

const OPERATOR_EVENTS: ReadonlySet<EventType> = new Set(["RunRequested", "ClearRequested", "InstanceMarked", "RunCancelRequested"]);

export function isOperatorEvent(event: MapflowEvent): event is OperatorEvent {
  return OPERATOR_EVENTS.has(event.type);
}
