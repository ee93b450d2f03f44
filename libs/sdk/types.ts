/** The public types of the authoring SDK (`import { dag, task, shell, taskGroup, zip, concat } from "mapflow"`). */
import type { Logger } from "pino";
import type { DagSpec, TriggerRule, ValueSource } from "../core/spec.ts";
import type { UpstreamState } from "../core/work.ts";
import type { ArtifactRef } from "../events/index.ts";

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
  /**
   * Aborted when the try should stop: its `timeoutMs` passed, the run was
   * cancelled or passed its `runTimeoutMs`, or the worker is stopping and
   * hands the try back. Stop soon after: past `timeoutMs` the try is failed
   * whether or not the function has returned.
   */
  readonly signal: AbortSignal;
  /** For a task with `partialResults: true`: each upstream's state and the map indexes that failed. */
  readonly upstreamStates?: Readonly<Record<string, UpstreamState>>;
  /**
   * Stores a file from this try in the `mf-artifacts` object store and
   * records it with the try's outcome (listed by `mapflow artifacts` and the
   * UI, every try's kept). `name` is a plain file name (letters, digits,
   * `.`, `_`, `-`; no `/`), unique within the try; at most
   * MAPFLOW_MAX_VALUE_BYTES (64 MB) each. `contentType` defaults to
   * `text/plain; charset=utf-8` for a string, else `application/octet-stream`.
   * Await it: a refused or failed write rejects (failing the try unless
   * caught), and only writes finished when the task returns are recorded.
   */
  artifact(name: string, data: Uint8Array | string, contentType?: string): Promise<ArtifactRef>;
  /**
   * A key-value store tasks share (JetStream KV, bucket `mf-kv`). Keys are
   * scoped to this run, so runs never see each other's values; `ctx.kv.dag`
   * is shared by every run of this DAG. Values are plain data (msgpack), up
   * to 1 MiB each.
   */
  readonly kv: TaskKv;
  /**
   * The run's logical date and data interval, each a new `Date` (a UTC
   * instant) on every read. A scheduled run covers [dataIntervalStart,
   * dataIntervalEnd) and its logical date is the interval's start, as in
   * Airflow; a manual run's logical date is when it was triggered, and its
   * interval is that instant.
   */
  readonly logicalDate: Date;
  readonly dataIntervalStart: Date;
  readonly dataIntervalEnd: Date;
};

/** One scope of `ctx.kv`. Keys: letters, digits, `_`, `-`, `=`, `/`, parts joined by single dots (`scores.fold-1`). */
export interface TaskKvScope {
  /** The value, or undefined when the key has none. */
  get(key: string): Promise<unknown>;
  put(key: string, value: unknown): Promise<void>;
  delete(key: string): Promise<void>;
  /**
   * Atomically replaces the value with `fn(current)`: a compare-and-set on
   * the key's revision, retried with the new value when another task wrote
   * first, so no update is lost (`update("best", (b) => Math.max(b ?? 0, score))`).
   * `fn` may run more than once; returning undefined leaves the value as it
   * is. Resolves to the value stored.
   */
  update<T = unknown>(key: string, fn: (current: T | undefined) => T | undefined | Promise<T | undefined>): Promise<T | undefined>;
}

/** `ctx.kv`: the run's scope, and the DAG's as `dag`. */
export interface TaskKv extends TaskKvScope {
  /** Shared by every run of this DAG (a sweep across runs, a best model so far). */
  readonly dag: TaskKvScope;
}

export type TaskFn<A = any, R = unknown> = (args: A, ctx: TaskContext) => R | Promise<R>;

export type TaskOptionsInput = {
  retries?: number;
  retryDelayMs?: number;
  /** Double the delay on each further try (Airflow's retry_exponential_backoff). */
  retryExponentialBackoff?: boolean;
  maxRetryDelayMs?: number;
  timeoutMs?: number;
  queue?: string;
  triggerRule?: TriggerRule;
  /** Default: the coordinator's global limit, 100,000 unless configured. */
  maxMapLength?: number;
  /** At most this many instances running at once in one run (Airflow's max_active_tis_per_dagrun). */
  maxActivePerRun?: number;
  /** At most this many instances running at once across all runs (max_active_tis_per_dag). */
  maxActive?: number;
  /** A readable label per instance (Airflow's map_index_template), rendered on the worker from its arguments. */
  mapIndexLabel?: (args: any) => string;
  /** With a trigger rule such as `all_done`: run with the results that exist, told which upstream map indexes failed. */
  partialResults?: boolean;
};

export type ShellOptions = TaskOptionsInput & {
  /** Working directory of the command; defaults to the worker's. */
  cwd?: string;
  /**
   * Environment variables for the command, written in the DAG file. Never
   * secrets: a name that looks like one (`API_KEY`, `DB_PASSWORD`) is
   * refused; name it in `secretEnv` instead.
   */
  env?: Record<string, string>;
  /**
   * Environment variables the command gets from the worker's own
   * environment at run time, by name: the values never enter the DAG file
   * or the log, and are replaced by `[redacted]` wherever the task's output,
   * result or error shows them. A name the worker lacks fails the try.
   */
  secretEnv?: readonly string[];
  /**
   * Give the command the worker's whole environment (as Airflow's
   * BashOperator does) rather than only PATH, HOME, USER, LANG, LC_*, TZ
   * and TMPDIR. Default false: the worker's environment holds its own
   * credentials and the secrets of other tasks.
   */
  inheritEnv?: boolean;
};

declare const OUTPUT_TYPE: unique symbol;

/**
 * A value known only at run time: a task's output, or one derived from
 * outputs (`out.map(fn)`, `zip`, `concat`, a mapped group's argument).
 */
export interface Ref<T = unknown> {
  readonly kind: "mapflow.ref";
  /** Where the value comes from, as the spec records it. */
  readonly source: ValueSource;
  /** Tasks the value is read from. */
  readonly tasks: readonly string[];
  /** Transforms each item on the worker before it reaches the task that reads it; keeps the length. */
  map<U>(fn: (item: T extends readonly (infer I)[] ? I : unknown) => U | Promise<U>): Ref<U[]>;
  readonly [OUTPUT_TYPE]?: T;
}

/** A reference to a task's output inside a DAG definition. */
export interface Output<T = unknown> extends Ref<T> {
  readonly taskId: string;
  readonly mapped: boolean;
  /** Run after these tasks too (an ordering dependency with no data). */
  after(...upstream: Output[]): Output<T>;
}

/** An argument: a literal value or a run-time reference. */
export type Arg<T> = T | Ref<unknown>;
export type Args<A> = { [K in keyof A]: Arg<A[K]> };
/** A mapped argument: a list, an object (mapped as [key, value] entries) or a reference. */
export type MappedArgs<A> = { [K in keyof A]?: readonly A[K][] | Readonly<Record<string, unknown>> | Ref<unknown> };
/** `expandKwargs`: a list of argument objects, or a reference to one. */
export type KwargsList<A> = readonly Partial<Args<A>>[] | Ref<unknown>;

export interface Partial_<A, R> {
  expand(args: MappedArgs<A>): Output<R[]>;
  expandKwargs(list: KwargsList<A>): Output<R[]>;
}

/** A task definition: call it for one instance, or `expand` it to map. */
export interface TaskDef<A = any, R = unknown> {
  (args: Args<A>): Output<R>;
  readonly taskId: string;
  /** Constant arguments; option names (`retries`, `queue`, …) among them set options, as in Airflow. */
  partial(args: Partial<Args<A>> & TaskOptionsInput): Partial_<A, R>;
  expand(args: MappedArgs<A>): Output<R[]>;
  /** One instance per object of the list; each object supplies the mapped arguments (Airflow's expand_kwargs). */
  expandKwargs(list: KwargsList<A>): Output<R[]>;
  /** Adds the task with no arguments, after these upstreams. */
  after(...upstream: Output[]): Output<R>;
}

export type Operator =
  | { readonly kind: "function"; readonly fn: TaskFn }
  | {
    readonly kind: "shell";
    readonly cwd?: string;
    readonly env?: Readonly<Record<string, string>>;
    readonly secretEnv?: readonly string[];
    readonly inheritEnv?: boolean;
  };

/** A compiled DAG: its serialisable spec, and the code workers run. */
export type Dag = {
  readonly kind: "mapflow.dag";
  readonly spec: DagSpec;
  readonly operators: ReadonlyMap<string, Operator>;
  /** `out.map` transforms and `mapIndexLabel` functions, by the id the spec gives them. */
  readonly functions: ReadonlyMap<string, (value: any) => unknown>;
};

export type DagOptions = {
  id: string;
  description?: string;
  /**
   * Runs on their own, one per data interval once it has ended: an Airflow
   * preset (`@hourly`, `@daily`, `@weekly`, `@monthly`, `@quarterly`,
   * `@yearly`) or a 5-field cron expression, in UTC. null or absent: manual
   * runs only.
   */
  schedule?: string | null;
  /** The first data interval starts at the schedule's first fire time from here: a Date, or an ISO date or date-time (UTC unless it says otherwise). */
  startDate?: string | Date;
  /** Create a run for every missed interval, oldest first (default false: only the latest). */
  catchup?: boolean;
  /** At most this many unfinished runs at once; scheduled runs wait for a free slot (default 16, as Airflow's max_active_runs). */
  maxActiveRuns?: number;
  /** A run still unfinished after this long fails its unfinished instances with a timeout error. */
  runTimeoutMs?: number;
  /** The `--conf` keys this DAG accepts, with their defaults; another key, or a value of another type, is refused before the run starts. */
  params?: Record<string, unknown>;
};

/** `taskGroup(id, build)`: call it for one copy, or `expand` it for one copy per group index. */
export interface TaskGroupDef<A, R> {
  (args: A): R;
  readonly groupId: string;
  expand(args: MappedArgs<A>): R;
  expandKwargs(list: KwargsList<A>): R;
  partial(args: Partial<Args<A>>): { expand(args: MappedArgs<A>): R; expandKwargs(list: KwargsList<A>): R };
}
