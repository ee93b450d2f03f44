/** The public types of the authoring SDK (`import { dag, task, shell } from "mapflow"`). */
import type { Logger } from "pino";
import type { DagSpec, TriggerRule } from "../core/spec.ts";

/** What a task function receives beside its arguments. */
export type TaskContext = {
  readonly log: Logger;
  readonly dagId: string;
  readonly runId: string;
  readonly taskId: string;
  /** -1 for an unmapped task. */
  readonly mapIndex: number;
  /** The attempt, from 1. */
  readonly tryNumber: number;
  /** The run's `--conf` object. */
  readonly conf: Readonly<Record<string, unknown>>;
  /** Aborted when the task's `timeoutMs` passes. */
  readonly signal: AbortSignal;
};

export type TaskFn<A = any, R = unknown> = (args: A, ctx: TaskContext) => R | Promise<R>;

export type TaskOptionsInput = {
  retries?: number;
  retryDelayMs?: number;
  timeoutMs?: number;
  queue?: string;
  triggerRule?: TriggerRule;
  maxMapLength?: number;
};

export type ShellOptions = TaskOptionsInput & {
  /** Working directory of the command; defaults to the worker's. */
  cwd?: string;
  /** Extra environment variables for the command. */
  env?: Record<string, string>;
};

declare const OUTPUT_TYPE: unique symbol;

/** A reference to a task's output inside a DAG definition. */
export interface Output<T = unknown> {
  readonly kind: "mapflow.output";
  readonly taskId: string;
  readonly mapped: boolean;
  /** Run after these tasks too (an ordering dependency with no data). */
  after(...upstream: Output[]): Output<T>;
  readonly [OUTPUT_TYPE]?: T;
}

/** An argument: a literal value or an upstream output. */
export type Arg<T> = T | Output<unknown>;
export type Args<A> = { [K in keyof A]: Arg<A[K]> };
/** A mapped argument: a list, an object (mapped as [key, value] entries) or an upstream output. */
export type MappedArgs<A> = { [K in keyof A]?: readonly A[K][] | Readonly<Record<string, unknown>> | Output<unknown> };

export interface Partial_<A, R> {
  expand(args: MappedArgs<A>): Output<R[]>;
}

/** A task definition: call it for one instance, or `expand` it to map. */
export interface TaskDef<A = any, R = unknown> {
  (args: Args<A>): Output<R>;
  readonly taskId: string;
  /** Constant arguments; option names (`retries`, `queue`, …) among them set options, as in Airflow. */
  partial(args: Partial<Args<A>> & TaskOptionsInput): Partial_<A, R>;
  expand(args: MappedArgs<A>): Output<R[]>;
  /** Adds the task with no arguments, after these upstreams. */
  after(...upstream: Output[]): Output<R>;
}

export type Operator =
  | { readonly kind: "function"; readonly fn: TaskFn }
  | { readonly kind: "shell"; readonly cwd?: string; readonly env?: Readonly<Record<string, string>> };

/** A compiled DAG: its serialisable spec, and the code workers run. */
export type Dag = {
  readonly kind: "mapflow.dag";
  readonly spec: DagSpec;
  readonly operators: ReadonlyMap<string, Operator>;
};

export type DagOptions = {
  id: string;
  description?: string;
  startDate?: string;
  catchup?: boolean;
};
