/**
 * What the coordinator should append next for one run, given its state.
 * Pure: time and the service's settings arrive as arguments. Decisions
 * chain within one call (a skip cascades down the graph) through a
 * projection of task states, so the state itself is never touched here.
 */
import type { CoordinatorEvent, ErrorInfo } from "../events/index.ts";
import type { RunState, TaskRun, TaskStateName } from "./state.ts";
import { activeInstances, TERMINAL_TASK_STATES } from "./state.ts";
import { DEFAULT_DECIDE_SETTINGS, retryDelay, taskSpec, type DecideSettings, type TaskSpec } from "./spec.ts";
import { groupIndexVerdict, NotMappableError, resolveExpansion, type Expansion } from "./expand.ts";
import { MissingValueError } from "./stored.ts";
import { triggerVerdict, type Verdict } from "./trigger.ts";

function errorNamed(name: string, message: string): ErrorInfo {
  return { name, message };
}

/** The task's expansion, or the TaskFailed event that says why its inputs cannot be expanded. */
function expansionOf(state: RunState, task: TaskSpec, now: number): Expansion | CoordinatorEvent {
  try {
    return resolveExpansion(state, task);
  } catch (err) {
    if (!(err instanceof NotMappableError || err instanceof MissingValueError)) throw err;
    return { type: "TaskFailed", runId: state.runId, taskId: task.id, error: errorNamed(err.name, err.message), at: now };
  }
}

/** Expands or schedules a ready task; a bad expansion fails the task with a message that says why. */
function start(state: RunState, task: TaskSpec, now: number, settings: DecideSettings): CoordinatorEvent {
  const runId = state.runId;
  if (task.mapping === null && task.group === null) return { type: "TaskScheduled", runId, taskId: task.id, at: now };
  const expansion = expansionOf(state, task, now);
  if ("type" in expansion) return expansion;
  const limit = task.options.maxMapLength ?? settings.maxMapLength;
  if (expansion.count > limit) {
    const where = task.options.maxMapLength === null ? "the global maxMapLength (--max-map-length or MAPFLOW_MAX_MAP_LENGTH)" : "its maxMapLength";
    const message = `task '${task.id}' would expand to ${expansion.count} instances, over ${where} of ${limit}; raise the limit or narrow the task's input`;
    return { type: "TaskFailed", runId, taskId: task.id, error: errorNamed("MapLengthExceeded", message), at: now };
  }
  return {
    type: "TaskExpanded", runId, taskId: task.id, count: expansion.count, at: now,
    ...(expansion.groupCounts ? { groupCounts: expansion.groupCounts } : {}),
    ...(expansion.settled.length ? { settled: expansion.settled } : {}),
  };
}

function stateAfter(event: CoordinatorEvent): TaskStateName | undefined {
  switch (event.type) {
    case "TaskExpanded": {
      const settled = event.settled ?? [];
      if (event.groupCounts ? event.count > 0 : settled.length < event.count) return "running";
      return settled.some(([, s]) => s === "upstream_failed") ? "upstream_failed" : "skipped";
    }
    case "TaskScheduled":
      return "running";
    case "InstancesRerun":
      return event.mapIndexes.length > 0 ? "running" : undefined;
    case "TaskSkipped":
      return event.state;
    case "TaskFailed":
      return "failed";
    default:
      return undefined;
  }
}

/**
 * A task inside a mapped group applies its trigger rule per group index (at
 * expansion); here it waits for its in-group upstreams and judges only the
 * ones outside the group.
 */
function verdictFor(state: RunState, spec: TaskSpec, stateOf: (id: string) => TaskStateName): Verdict {
  if (spec.group === null) return triggerVerdict(spec.options.triggerRule, spec.upstream.map(stateOf));
  const outside: TaskStateName[] = [];
  for (const id of spec.upstream) {
    if (taskSpec(state.spec, id).group !== spec.group) outside.push(stateOf(id));
    else if (!TERMINAL_TASK_STATES.has(stateOf(id))) return { kind: "wait" };
  }
  return triggerVerdict(spec.options.triggerRule, outside);
}

/**
 * Held-back instances that get a slot now, lowest waiting first: as many as
 * `maxActivePerRun` leaves free in this run and `maxActive` across runs.
 */
function dispatch(state: RunState, spec: TaskSpec, task: TaskRun, settings: DecideSettings): number[] | null {
  let free = Infinity;
  if (spec.options.maxActivePerRun !== null) free = spec.options.maxActivePerRun - activeInstances(task);
  if (spec.options.maxActive !== null) {
    const active = settings.activeAcrossRuns?.(state.dagId, spec.id) ?? activeInstances(task);
    free = Math.min(free, spec.options.maxActive - active);
  }
  if (free <= 0) return null;
  const picked = new Set<number>();
  const waiting = task.waiting ?? [];
  for (let n = task.waitingHead ?? 0; n < waiting.length && picked.size < free; n++) {
    const instance = task.instances![waiting[n]!]!;
    if (instance.state === "scheduled") picked.add(instance.mapIndex);
  }
  return picked.size ? [...picked] : null;
}

/** Cleared instances whose upstreams have finished again: new tries, or settled by the trigger rule (per group index in a group). */
function rerun(state: RunState, spec: TaskSpec, indexes: readonly number[], verdict: Verdict, now: number): CoordinatorEvent {
  // The cleared upstreams ran again and may have returned other items: they are checked as at expansion.
  if (verdict.kind === "run") {
    const expansion = expansionOf(state, spec, now);
    if ("type" in expansion) return expansion;
  }
  const settled: [number, "skipped" | "upstream_failed"][] = [];
  const queued: number[] = [];
  const instances = state.tasks[spec.id]!.instances!;
  for (const mapIndex of indexes) {
    let v = verdict;
    if (v.kind === "run" && spec.group !== null) v = groupIndexVerdict(state, spec, instances[mapIndex]?.group ?? mapIndex);
    if (v.kind === "skip") settled.push([mapIndex, v.state]);
    else queued.push(mapIndex);
  }
  return { type: "InstancesRerun", runId: state.runId, taskId: spec.id, mapIndexes: queued, ...(settled.length ? { settled } : {}), at: now };
}

/** Tasks nothing else waits for: their states decide the run's, as in Airflow. */
function leaves(state: RunState): string[] {
  const upstream = new Set(state.spec.tasks.flatMap((t) => t.upstream));
  return state.spec.tasks.map((t) => t.id).filter((id) => !upstream.has(id));
}

export function decide(state: RunState, now: number, settings: DecideSettings = DEFAULT_DECIDE_SETTINGS): CoordinatorEvent[] {
  if (state.state !== "running" && state.state !== "queued") return [];
  const runId = state.runId;
  if (state.cancelRequested) return [{ type: "RunFinished", runId, state: "cancelled", at: now }];
  const timeout = state.spec.runTimeoutMs;
  if (timeout !== null && !state.timedOut && now >= state.startedAt + timeout) {
    const message = `run ${runId} of DAG '${state.dagId}' passed its runTimeoutMs of ${timeout} ms; its unfinished instances failed`;
    return [{ type: "RunTimedOut", runId, error: errorNamed("RunTimeout", message), at: now }];
  }
  const events: CoordinatorEvent[] = [];
  const projected = new Map<string, TaskStateName>();
  const stateOf = (id: string): TaskStateName => projected.get(id) ?? state.tasks[id]!.state;

  for (const spec of state.spec.tasks) {
    const task = state.tasks[spec.id]!;
    if (task.retrying > 0 && task.instances) {
      for (const instance of task.instances) {
        if (instance.state !== "up_for_retry") continue;
        const next = instance.try + 1;
        events.push({
          type: "InstanceRetried", runId: state.runId, taskId: spec.id, mapIndex: instance.mapIndex,
          try: next, notBefore: now + retryDelay(spec.options, next), at: now,
        });
      }
    }
    if (task.scheduled > 0) {
      const queued = dispatch(state, spec, task, settings);
      if (queued) events.push({ type: "InstancesQueued", runId: state.runId, taskId: spec.id, mapIndexes: queued, at: now });
    }
    if (task.state !== "pending") continue;
    const verdict = verdictFor(state, spec, stateOf);
    if (verdict.kind === "wait") continue;
    const event: CoordinatorEvent = task.rerun
      ? rerun(state, spec, task.rerun, verdict, now)
      : verdict.kind === "skip"
        ? { type: "TaskSkipped", runId: state.runId, taskId: spec.id, state: verdict.state, at: now }
        : start(state, spec, now, settings);
    events.push(event);
    const after = stateAfter(event);
    if (after) projected.set(spec.id, after);
  }

  if (state.spec.tasks.every((t) => TERMINAL_TASK_STATES.has(stateOf(t.id)))) {
    const failed = leaves(state).some((id) => stateOf(id) === "failed" || stateOf(id) === "upstream_failed");
    events.push({ type: "RunFinished", runId: state.runId, state: failed ? "failed" : "success", at: now });
  }
  return events;
}
