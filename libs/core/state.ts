/**
 * The state of one DAG run, as folded from its events by `evolve`.
 * `evolve` updates the state it is given in place: a mapped task can hold
 * 100,000 instances, and copying them on every result would make a run
 * quadratic. Whoever folds owns the state; take a copy to keep a snapshot.
 */
import type { DagSpec } from "./spec.ts";
import type { ErrorInfo } from "../events/index.ts";

export type InstanceStateName = "queued" | "up_for_retry" | "success" | "failed";
export type TaskStateName = "pending" | "running" | "success" | "failed" | "skipped" | "upstream_failed";
export type RunStateName = "running" | "success" | "failed";

export type Instance = {
  /** -1 for an unmapped task, as in Airflow. */
  mapIndex: number;
  state: InstanceStateName;
  /** The current (or last) attempt, from 1. */
  try: number;
  result?: unknown;
  error?: ErrorInfo;
  startedAt?: number;
  endedAt?: number;
  worker?: string;
  /** For a retry: not to start before this time (epoch ms). */
  notBefore?: number;
};

export type TaskRun = {
  id: string;
  state: TaskStateName;
  mapped: boolean;
  /** null until the task is expanded or scheduled; then ordered by map index. */
  instances: Instance[] | null;
  /** Instances not yet finished (keeps completion checks O(1)). */
  open: number;
  /** Instances failed and waiting for their next try. */
  retrying: number;
  error?: ErrorInfo;
  startedAt?: number;
  endedAt?: number;
};

export type RunState = {
  runId: string;
  dagId: string;
  dagVersion: string;
  spec: DagSpec;
  conf: Record<string, unknown>;
  state: RunStateName;
  startedAt: number;
  endedAt?: number;
  tasks: Record<string, TaskRun>;
};

export const TERMINAL_TASK_STATES: ReadonlySet<TaskStateName> = new Set(["success", "failed", "skipped", "upstream_failed"]);

