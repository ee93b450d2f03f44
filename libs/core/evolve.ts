/**
 * Folds one run's events into its state. The coordinator, the projector,
 * replay and the CLI all fold with this one function.
 *
 * It is forgiving by design: JetStream delivers at least once, so an event
 * that repeats a known fact (a second result for a finished instance, an
 * expansion of a task already expanded) changes nothing.
 */
import { isOutcomeEvent, type ErrorInfo, type FinishedInstance, type RunEvent, type RunRequested } from "../events/index.ts";
import { clearPlan } from "./clear.ts";
import type { Instance, RunState, TaskRun } from "./state.ts";
import { FINISHED_RUN_STATES, taskStateOf } from "./state.ts";
import type { DagSpec } from "./spec.ts";
import { isLimited, isMapped, taskSpec } from "./spec.ts";
import { groupIndexes } from "./expand.ts";

function initialTasks(spec: DagSpec): Record<string, TaskRun> {
  const tasks: Record<string, TaskRun> = {};
  for (const t of spec.tasks) tasks[t.id] = { id: t.id, state: "pending", mapped: isMapped(t), instances: null, open: 0, retrying: 0, scheduled: 0 };
  return tasks;
}

function started(event: RunRequested): RunState {
  return {
    runId: event.runId,
    dagId: event.dagId,
    dagVersion: event.dagVersion,
    spec: event.spec,
    conf: { ...event.conf },
    // A request logged before schedules existed was a manual run, dated when it was made.
    runType: event.runType ?? "manual",
    logicalDate: event.logicalDate ?? event.at,
    dataIntervalStart: event.dataIntervalStart ?? event.logicalDate ?? event.at,
    dataIntervalEnd: event.dataIntervalEnd ?? event.logicalDate ?? event.at,
    state: "queued",
    startedAt: event.at,
    tasks: initialTasks(event.spec),
  };
}

/**
 * Without details an instance gets its `result` slot when it is made: V8
 * keeps a property added later in a backing store of its own (40 bytes more
 * an instance), so a map of 1,000,000 holds 64 MB instead of 96 MB.
 */
const queued = (mapIndex: number): Instance => ({ mapIndex, state: "queued", try: 1 });
const queuedWithSlot = (mapIndex: number): Instance => ({ mapIndex, state: "queued", try: 1, result: undefined });

function queuedInstances(count: number, mapped: boolean, details: boolean, groupCounts?: readonly number[]): Instance[] {
  const make = details ? queued : queuedWithSlot;
  if (!mapped) return [make(-1)];
  const instances = Array.from({ length: count }, (_, mapIndex) => make(mapIndex));
  if (groupCounts) groupIndexes(groupCounts).forEach((g, i) => (instances[i]!.group = g));
  return instances;
}

function instanceOf(task: TaskRun, mapIndex: number): Instance | undefined {
  if (!task.instances) return undefined;
  return task.mapped ? task.instances[mapIndex] : task.instances[0];
}

/** Holds an instance back until the coordinator gives it a slot (`maxActive…`). */
function hold(task: TaskRun, instance: Instance): void {
  instance.state = "scheduled";
  task.scheduled += 1;
  (task.waiting ??= []).push(task.mapped ? instance.mapIndex : 0);
}

const OPEN: ReadonlySet<string> = new Set(["scheduled", "queued", "running", "up_for_retry"]);

/** Takes an unfinished instance out of the task's counters before it gets a final state. */
function close(task: TaskRun, instance: Instance): void {
  if (!OPEN.has(instance.state)) return;
  task.open -= 1;
  if (instance.state === "scheduled") task.scheduled -= 1;
  if (instance.state === "up_for_retry") task.retrying -= 1;
}

/** A new try of a finished instance: its last outcome stays in the log, not in the state. */
function again(task: TaskRun, instance: Instance, limited: boolean, details: boolean): void {
  instance.try += 1;
  // Without details the result slot stays (see queuedInstances): deleting it would turn the object into a slow dictionary.
  if (details) delete instance.result;
  else instance.result = undefined;
  delete instance.error;
  delete instance.endedAt;
  delete instance.notBefore;
  task.open += 1;
  if (limited) hold(task, instance);
  else instance.state = "queued";
}

/** Forgets a task's run so it expands again; its old instances carry the try count and the removed ones. */
function reset(task: TaskRun): void {
  if (task.instances) task.previous = task.instances;
  task.instances = null;
  task.state = "pending";
  task.open = task.retrying = task.scheduled = 0;
  for (const key of ["groupCounts", "groupSettled", "waiting", "waitingHead", "error", "startedAt", "endedAt", "rerun", "removed"] as const) delete task[key];
}

/** Ends every unfinished instance and task of a run that is stopped (cancel or run timeout). */
function stopAll(state: RunState, at: number, running: "failed", waiting: "failed" | "skipped", error: ErrorInfo, details: boolean): void {
  for (const task of Object.values(state.tasks)) {
    if (task.state === "pending") {
      task.state = waiting;
      if (waiting === "failed") task.error = error;
      task.endedAt = at;
      continue;
    }
    for (const instance of task.instances ?? []) {
      if (!OPEN.has(instance.state)) continue;
      const started = instance.state === "running";
      close(task, instance);
      instance.state = started ? running : waiting;
      if (instance.state === "failed") instance.error = error;
      if (details) instance.endedAt = at;
    }
    settle(task, at);
  }
}

/** A task is done when its last open instance is; its state follows from its instances'. */
function settle(task: TaskRun, at: number): void {
  if (task.open > 0 || task.instances === null) return;
  task.state = taskStateOf(task.instances, task.groupSettled);
  task.endedAt = at;
}

/**
 * An instance's outcome: it succeeds, fails, or waits for its retry. Read from a single outcome event
 * or from one of an InstancesFinished's entries as they are (`failed` says which), not from a copy made
 * per instance: the coordinator and the projector fold one per instance of a wide map.
 */
function finish(state: RunState, task: TaskRun, outcome: FinishedInstance, worker: string, failed: boolean, details: boolean): void {
  const instance = instanceOf(task, outcome.mapIndex);
  // A second outcome for the same try (finished, or already waiting for its retry) is a redelivery.
  if (!instance || (instance.state !== "queued" && instance.state !== "running") || instance.try !== outcome.try) return;
  if (details) {
    instance.startedAt = outcome.startedAt;
    instance.endedAt = outcome.at;
    instance.worker = worker;
    if (outcome.label !== undefined) instance.label = outcome.label;
    if (outcome.artifacts?.length) (instance.artifacts ??= []).push(...outcome.artifacts.map(({ name, contentType, bytes, object }) => ({ name, contentType, bytes, object, try: outcome.try })));
  }
  if (!failed) {
    instance.state = "success";
    instance.result = outcome.result;
    task.open -= 1;
  } else {
    instance.error = outcome.error;
    const retries = taskSpec(state.spec, task.id).options.retries;
    if (outcome.try <= retries && outcome.noRetry !== true) {
      instance.state = "up_for_retry";
      task.retrying += 1;
    } else {
      instance.state = "failed";
      task.open -= 1;
    }
  }
  settle(task, outcome.at);
}

export type EvolveOptions = {
  /**
   * Keep what only readers show — each instance's start and end times,
   * worker and label (default true). The coordinator decides without them,
   * and a map of 1,000,000 instances is a quarter of the memory lighter.
   */
  readonly details?: boolean;
};

/** How the coordinator folds: only what `decide` needs. */
export const DECIDING: EvolveOptions = { details: false };

export function evolve(state: RunState | undefined, event: RunEvent, options: EvolveOptions = {}): RunState | undefined {
  const details = options.details ?? true;
  if (event.type === "RunRequested") return state ?? started(event);
  if (!state) return undefined; // an event of a run whose request this reader never saw
  const task = "taskId" in event ? state.tasks[event.taskId] : undefined;
  if (state.state === "queued" && !isOutcomeEvent(event)) state.state = "running";

  switch (event.type) {
    case "TaskExpanded":
    case "TaskScheduled": {
      if (!task || task.state !== "pending" || task.instances !== null) return state;
      const expanded = event.type === "TaskExpanded" ? event : null;
      const count = expanded ? expanded.count : 1;
      task.instances = queuedInstances(count, task.mapped, details, expanded?.groupCounts);
      if (expanded?.groupCounts) task.groupCounts = [...expanded.groupCounts];
      task.open = task.instances.length;
      if (task.previous) {
        // A cleared task expands again: tries continue, and instances past the new length are removed.
        const previous = task.previous;
        task.instances.forEach((i, n) => {
          const before = previous[n];
          if (!before) return;
          i.try = before.try + 1;
          if (before.artifacts) i.artifacts = before.artifacts; // earlier tries' files stay listed
        });
        const length = task.instances.length;
        for (let n = length; task.mapped && n < previous.length; n++) task.instances.push({ ...previous[n]!, state: "removed" });
        if (task.instances.length > length) task.removed = task.instances.length - length;
        delete task.previous;
      }
      if (expanded?.groupCounts && expanded.settled) task.groupSettled = Object.fromEntries(expanded.settled);
      else for (const [mapIndex, settled] of expanded?.settled ?? []) {
        const instance = task.instances[mapIndex];
        if (instance?.state !== "queued") continue;
        instance.state = settled;
        task.open -= 1;
      }
      if (isLimited(taskSpec(state.spec, task.id))) {
        task.waitingHead = 0;
        for (const instance of task.instances) if (instance.state === "queued") hold(task, instance);
      }
      task.startedAt = event.at;
      task.state = "running";
      settle(task, event.at);
      return state;
    }
    case "InstancesQueued": {
      if (!task?.instances) return state;
      for (const mapIndex of event.mapIndexes) {
        const instance = instanceOf(task, mapIndex);
        if (instance?.state !== "scheduled") continue;
        instance.state = "queued";
        task.scheduled -= 1;
      }
      const waiting = task.waiting ?? [];
      let head = task.waitingHead ?? 0;
      while (head < waiting.length && task.instances[waiting[head]!]!.state !== "scheduled") head++;
      task.waitingHead = head;
      return state;
    }
    case "InstanceStarted": {
      const instance = task && instanceOf(task, event.mapIndex);
      if (!instance || instance.state !== "queued" || instance.try !== event.try) return state;
      instance.state = "running";
      if (details) {
        instance.startedAt = event.startedAt;
        instance.worker = event.worker;
      }
      return state;
    }
    case "TaskSkipped":
      if (task && task.state === "pending") {
        task.state = event.state;
        task.endedAt = event.at;
      }
      return state;
    case "TaskFailed":
      if (task && task.state === "pending") {
        task.state = "failed";
        task.error = event.error;
        task.endedAt = event.at;
      }
      return state;
    case "InstanceSucceeded":
    case "InstanceFailed":
      if (task) finish(state, task, event, event.worker, event.type === "InstanceFailed", details);
      return state;
    case "InstancesFinished":
      if (task) for (const outcome of event.outcomes) finish(state, task, outcome, event.worker, outcome.error !== undefined, details);
      return state;
    case "InstanceRetried": {
      const instance = task && instanceOf(task, event.mapIndex);
      if (!task || !instance || instance.state !== "up_for_retry" || event.try !== instance.try + 1) return state;
      task.retrying -= 1;
      instance.try = event.try;
      instance.notBefore = event.notBefore;
      if (isLimited(taskSpec(state.spec, task.id))) hold(task, instance);
      else instance.state = "queued";
      return state;
    }
    case "InstancesRerun": {
      if (!task?.instances || task.state !== "pending") return state;
      const limited = isLimited(taskSpec(state.spec, task.id));
      for (const mapIndex of event.mapIndexes) {
        const instance = instanceOf(task, mapIndex);
        if (instance && !OPEN.has(instance.state) && instance.state !== "removed") again(task, instance, limited, details);
      }
      for (const [mapIndex, settled] of event.settled ?? []) {
        const instance = instanceOf(task, mapIndex);
        if (instance && !OPEN.has(instance.state)) instance.state = settled;
      }
      delete task.rerun;
      task.state = "running";
      settle(task, event.at);
      return state;
    }
    case "ClearRequested": {
      if (!FINISHED_RUN_STATES.has(state.state) || !task) return state;
      for (const [id, indexes] of clearPlan(state, event.taskId, event.mapIndexes, event.downstream)) {
        const cleared = state.tasks[id]!;
        if (indexes === null || cleared.instances === null) {
          reset(cleared);
        } else if (id === event.taskId) {
          // The chosen instances' own inputs are finished: they run again at once.
          const limited = isLimited(taskSpec(state.spec, id));
          for (const mapIndex of indexes) {
            const instance = instanceOf(cleared, mapIndex);
            if (instance && !OPEN.has(instance.state) && instance.state !== "removed") again(cleared, instance, limited, details);
          }
          cleared.state = "running";
          if (limited) cleared.waitingHead ??= 0;
          settle(cleared, event.at); // nothing requeued: it is as finished as before
        } else if (indexes.length > 0) {
          cleared.rerun = [...indexes];
          cleared.state = "pending";
        }
        delete cleared.endedAt;
      }
      state.state = "running";
      state.startedAt = event.at; // as Airflow restarts a cleared run's clock: a run timeout counts from here
      delete state.endedAt;
      delete state.timedOut;
      delete state.cancelRequested;
      return state;
    }
    case "InstanceMarked": {
      const instance = task && instanceOf(task, event.mapIndex);
      if (!task || !instance || instance.state === event.state || instance.state === "removed") return state;
      close(task, instance);
      instance.state = event.state;
      if (details) instance.endedAt = event.at;
      if (event.state === "failed") instance.error ??= { name: "MarkedFailed", message: "marked failed by an operator" };
      settle(task, event.at);
      return state;
    }
    case "RunCancelRequested":
      if (!FINISHED_RUN_STATES.has(state.state)) state.cancelRequested = true;
      return state;
    case "RunTimedOut":
      if (FINISHED_RUN_STATES.has(state.state) || state.timedOut) return state;
      state.timedOut = true;
      stopAll(state, event.at, "failed", "failed", event.error, details);
      return state;
    case "RunFinished":
      if (FINISHED_RUN_STATES.has(state.state)) return state;
      if (event.state === "cancelled") {
        stopAll(state, event.at, "failed", "skipped", { name: "Cancelled", message: "the run was cancelled" }, details);
      }
      state.state = event.state;
      state.endedAt = event.at;
      return state;
    default: {
      const unknown: never = event;
      throw new Error(`evolve: unhandled event ${JSON.stringify(unknown)}`);
    }
  }
}

/** Folds a whole history; `undefined` until the run's request is seen. */
export function fold(events: Iterable<RunEvent>, state?: RunState, options?: EvolveOptions): RunState | undefined {
  let current = state;
  for (const event of events) current = evolve(current, event, options);
  return current;
}
