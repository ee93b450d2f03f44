/**
 * The state of one DAG run, as folded from its events by `evolve`.
 * `evolve` updates the state it is given in place: a mapped task can hold
 * 100,000 instances, and copying them on every result would make a run
 * quadratic. Whoever folds owns the state; take a copy to keep a snapshot.
 */
import type { DagSpec } from "./spec.ts";
import type { ArtifactRef, ErrorInfo, RunType } from "../events/index.ts";

/** An artifact of one try of an instance. */
export type TryArtifact = ArtifactRef & { readonly try: number };

/** Airflow's task-instance states. `scheduled`: waiting for a free slot (`maxActive…`); `queued`: its work is published. */
export type InstanceStateName =
  | "scheduled" | "queued" | "running" | "success" | "failed" | "skipped" | "upstream_failed" | "up_for_retry" | "removed";
/** `pending` is Airflow's "no status": the task has not been reached yet. */
export type TaskStateName = "pending" | "running" | "success" | "failed" | "skipped" | "upstream_failed";
export type RunStateName = "queued" | "running" | "success" | "failed" | "cancelled";

export type Instance = {
  /** -1 for an unmapped task, as in Airflow. */
  mapIndex: number;
  state: InstanceStateName;
  /** The current (or last) attempt, from 1. */
  try: number;
  /** The group index, for a task mapped inside a mapped task group. */
  group?: number;
  /** The `mapIndexLabel` the worker rendered for it. */
  label?: string;
  result?: unknown;
  error?: ErrorInfo;
  startedAt?: number;
  endedAt?: number;
  worker?: string;
  /** For a retry: not to start before this time (epoch ms). */
  notBefore?: number;
  /**
   * What its tries stored with `ctx.artifact`, oldest try first. Kept across
   * retries and clears (the objects outlive the try), and only by readers
   * (`details`): the coordinator decides without them.
   */
  artifacts?: TryArtifact[];
};

export type TaskRun = {
  id: string;
  state: TaskStateName;
  mapped: boolean;
  /** null until the task is expanded or scheduled; then ordered by map index. */
  instances: Instance[] | null;
  /** For a task mapped inside a mapped group: how many instances each group index has. */
  groupCounts?: number[];
  /** For a task mapped inside a mapped group: group indexes that did not run, and why. */
  groupSettled?: Record<number, "skipped" | "upstream_failed">;
  /** Instances not yet finished (keeps completion checks O(1)). */
  open: number;
  /** Instances failed and waiting for their next try. */
  retrying: number;
  /** Instances held back by `maxActive…`, waiting for a slot. */
  scheduled: number;
  /** Positions in `instances` of held-back instances, in the order they get slots; entries before `waitingHead` are done. */
  waiting?: number[];
  waitingHead?: number;
  error?: ErrorInfo;
  startedAt?: number;
  endedAt?: number;
  /** Its instances before a clear of the whole task: the next expansion continues their tries, and marks the surplus `removed`. */
  previous?: Instance[];
  /** Cleared instances waiting for their upstreams to finish again. */
  rerun?: number[];
  /** How many of `instances` are `removed` (left over from a longer expansion before a clear). */
  removed?: number;
};

export type RunState = {
  runId: string;
  dagId: string;
  dagVersion: string;
  spec: DagSpec;
  conf: Record<string, unknown>;
  /** How the run came to be, and the data interval it covers (epoch ms; a manual run's is its trigger instant). */
  runType: RunType;
  logicalDate: number;
  dataIntervalStart: number;
  dataIntervalEnd: number;
  state: RunStateName;
  startedAt: number;
  endedAt?: number;
  /** An operator asked to cancel; the coordinator ends the run. */
  cancelRequested?: boolean;
  /** The run passed its runTimeoutMs. */
  timedOut?: boolean;
  tasks: Record<string, TaskRun>;
};

export const TERMINAL_TASK_STATES: ReadonlySet<TaskStateName> = new Set(["success", "failed", "skipped", "upstream_failed"]);
export const FINISHED_INSTANCE_STATES: ReadonlySet<InstanceStateName> = new Set(["success", "failed", "skipped", "upstream_failed", "removed"]);
/** Instances that hold a slot under `maxActive…`: their work is out. */
export function activeInstances(task: TaskRun): number {
  return task.open - task.scheduled - task.retrying;
}

export const FINISHED_RUN_STATES: ReadonlySet<RunStateName> = new Set(["success", "failed", "cancelled"]);

/** A finished mapped task's state, from its instances: failed if any failed; skipped if none ran. */
export function taskStateOf(instances: readonly Instance[], settledGroups?: Record<number, "skipped" | "upstream_failed">): TaskStateName {
  let failed = false;
  let upstreamFailed = settledGroups !== undefined && Object.values(settledGroups).includes("upstream_failed");
  let ran = false;
  for (const i of instances) {
    if (i.state === "failed") failed = true;
    else if (i.state === "upstream_failed") upstreamFailed = true;
    else if (i.state === "success") ran = true;
  }
  if (failed) return "failed";
  if (upstreamFailed) return "upstream_failed";
  return ran ? "success" : "skipped";
}
