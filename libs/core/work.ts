/**
 * Work items: what a worker needs to run one try of one instance. The
 * coordinator derives them from the run's state and the event that made
 * the instances runnable; it never runs user code itself.
 */
import type { CoordinatorEvent } from "../events/index.ts";
import type { RunState } from "./state.ts";
import type { Operator, TaskSpec } from "./spec.ts";
import { taskSpec } from "./spec.ts";
import { instanceArgs, resolveConstant, resolveExpansion, type Expansion } from "./expand.ts";

export type WorkItem = {
  readonly runId: string;
  readonly dagId: string;
  readonly dagVersion: string;
  readonly taskId: string;
  readonly operator: Operator;
  readonly queue: string;
  readonly mapIndex: number;
  readonly try: number;
  readonly args: Readonly<Record<string, unknown>>;
  readonly conf: Readonly<Record<string, unknown>>;
  readonly timeoutMs: number | null;
  /** Epoch ms before which the try must not start (retry delay); 0 for now. */
  readonly notBefore: number;
};

function item(state: RunState, task: TaskSpec, mapIndex: number, tryNumber: number, args: Record<string, unknown>, notBefore: number): WorkItem {
  return {
    runId: state.runId, dagId: state.dagId, dagVersion: state.dagVersion, taskId: task.id, operator: task.operator,
    queue: task.options.queue, mapIndex, try: tryNumber, args, conf: state.conf, timeoutMs: task.options.timeoutMs, notBefore,
  };
}

/** Arguments for any instance of a task, resolving its inputs once. */
function argsFor(state: RunState, task: TaskSpec): (mapIndex: number) => Record<string, unknown> {
  if (task.expand === null) {
    const constant = resolveConstant(state, task);
    return () => constant;
  }
  const expansion: Expansion = resolveExpansion(state, task);
  return (mapIndex) => instanceArgs(expansion, mapIndex);
}

/** The work an appended coordinator event calls for. */
export function workFor(state: RunState, event: CoordinatorEvent): WorkItem[] {
  switch (event.type) {
    case "TaskExpanded": {
      const task = taskSpec(state.spec, event.taskId);
      const args = argsFor(state, task);
      return Array.from({ length: event.count }, (_, i) => item(state, task, i, 1, args(i), 0));
    }
    case "TaskScheduled": {
      const task = taskSpec(state.spec, event.taskId);
      return [item(state, task, -1, 1, argsFor(state, task)(-1), 0)];
    }
    case "InstanceRetried": {
      const task = taskSpec(state.spec, event.taskId);
      return [item(state, task, event.mapIndex, event.try, argsFor(state, task)(event.mapIndex), event.notBefore)];
    }
    default:
      return [];
  }
}

/**
 * Every queued instance's work, for a coordinator that restarts and cannot
 * know which of its publishes landed; JetStream drops the duplicates by
 * message id, and `evolve` ignores a second result.
 */
export function pendingWork(state: RunState): WorkItem[] {
  if (state.state !== "running") return [];
  const items: WorkItem[] = [];
  for (const task of state.spec.tasks) {
    const instances = state.tasks[task.id]?.instances;
    if (!instances?.some((i) => i.state === "queued")) continue;
    const args = argsFor(state, task);
    for (const i of instances) {
      if (i.state === "queued") items.push(item(state, task, i.mapIndex, i.try, args(i.mapIndex), i.notBefore ?? 0));
    }
  }
  return items;
}
