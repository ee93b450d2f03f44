/**
 * What the coordinator should append next for one run, given its state.
 * Pure: time arrives as `now`. Decisions chain within one call (a skip
 * cascades down the graph) through a projection of task states, so the
 * state itself is never touched here.
 */
import type { CoordinatorEvent, ErrorInfo } from "../events/index.ts";
import type { RunState, TaskStateName } from "./state.ts";
import { TERMINAL_TASK_STATES } from "./state.ts";
import type { TaskSpec } from "./spec.ts";
import { NotMappableError, resolveExpansion } from "./expand.ts";

type Verdict = { kind: "run" } | { kind: "skip"; state: "skipped" | "upstream_failed" } | { kind: "wait" };

/** Airflow's trigger rules over the upstream tasks' states. */
function triggerVerdict(task: TaskSpec, upstream: readonly TaskStateName[]): Verdict {
  if (!upstream.every((s) => TERMINAL_TASK_STATES.has(s))) return { kind: "wait" };
  switch (task.options.triggerRule) {
    case "all_done":
      return { kind: "run" };
    case "all_success":
      if (upstream.some((s) => s === "failed" || s === "upstream_failed")) return { kind: "skip", state: "upstream_failed" };
      if (upstream.some((s) => s === "skipped")) return { kind: "skip", state: "skipped" };
      return { kind: "run" };
    default: {
      const unknown: never = task.options.triggerRule;
      throw new Error(`unknown trigger rule ${String(unknown)}`);
    }
  }
}

function errorInfo(name: string, message: string): ErrorInfo {
  return { name, message };
}

/** Expands or schedules a ready task; a bad expansion fails the task with a message that says why. */
function start(state: RunState, task: TaskSpec, now: number): CoordinatorEvent {
  const runId = state.runId;
  if (task.expand === null) return { type: "TaskScheduled", runId, taskId: task.id, at: now };
  let count: number;
  try {
    count = resolveExpansion(state, task).count;
  } catch (err) {
    if (!(err instanceof NotMappableError)) throw err;
    return { type: "TaskFailed", runId, taskId: task.id, error: errorInfo("NotMappableError", err.message), at: now };
  }
  if (count > task.options.maxMapLength) {
    const message = `task '${task.id}' would expand to ${count} instances, over its maxMapLength of ${task.options.maxMapLength}; raise maxMapLength in the task's options or narrow its input`;
    return { type: "TaskFailed", runId, taskId: task.id, error: errorInfo("MapLengthExceeded", message), at: now };
  }
  return { type: "TaskExpanded", runId, taskId: task.id, count, at: now };
}

function stateAfter(event: CoordinatorEvent): TaskStateName | undefined {
  switch (event.type) {
    case "TaskExpanded":
      return event.count === 0 ? "skipped" : "running";
    case "TaskScheduled":
      return "running";
    case "TaskSkipped":
      return event.state;
    case "TaskFailed":
      return "failed";
    default:
      return undefined;
  }
}

export function decide(state: RunState, now: number): CoordinatorEvent[] {
  if (state.state !== "running") return [];
  const events: CoordinatorEvent[] = [];
  const projected = new Map<string, TaskStateName>();
  const stateOf = (id: string): TaskStateName => projected.get(id) ?? state.tasks[id]!.state;

  for (const spec of state.spec.tasks) {
    const task = state.tasks[spec.id]!;
    if (task.retrying > 0 && task.instances) {
      for (const instance of task.instances) {
        if (instance.state !== "up_for_retry") continue;
        events.push({
          type: "InstanceRetried", runId: state.runId, taskId: spec.id, mapIndex: instance.mapIndex,
          try: instance.try + 1, notBefore: now + spec.options.retryDelayMs, at: now,
        });
      }
    }
    if (task.state !== "pending") continue;
    const verdict = triggerVerdict(spec, spec.upstream.map(stateOf));
    if (verdict.kind === "wait") continue;
    const event: CoordinatorEvent = verdict.kind === "skip"
      ? { type: "TaskSkipped", runId: state.runId, taskId: spec.id, state: verdict.state, at: now }
      : start(state, spec, now);
    events.push(event);
    projected.set(spec.id, stateAfter(event)!);
  }

  const finals = state.spec.tasks.map((t) => stateOf(t.id));
  if (finals.every((s) => TERMINAL_TASK_STATES.has(s))) {
    const failed = finals.some((s) => s === "failed" || s === "upstream_failed");
    events.push({ type: "RunFinished", runId: state.runId, state: failed ? "failed" : "success", at: now });
  }
  return events;
}
