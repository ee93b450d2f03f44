/**
 * The serialisable shape of a DAG, as the SDK compiles it. It holds no user
 * code: the coordinator reads only this, and workers look functions up by
 * id (task id, transform id) in the DAG file they loaded.
 */

/** Where an argument's value comes from. */
export type ValueSource =
  | { readonly kind: "literal"; readonly value: unknown }
  /**
   * An upstream task's output: its result; for a mapped task the list of its
   * non-null results in map-index order. Inside a mapped task group, a task of
   * the same group gives the result that belongs to the same group index.
   */
  | { readonly kind: "output"; readonly task: string }
  /** `out.map(fn)`: each item goes through transform `fn` on the worker, never on the coordinator. */
  | { readonly kind: "map"; readonly source: ValueSource; readonly fn: string }
  /** `zip(a, b, …)`: tuples; the shortest length, or the longest when `fill` is given. */
  | { readonly kind: "zip"; readonly sources: readonly ValueSource[]; readonly fill?: { readonly value: unknown } }
  /** `concat(a, b, …)`: every item of each source, in order. */
  | { readonly kind: "concat"; readonly sources: readonly ValueSource[] }
  /** An argument of the enclosing mapped task group, as it is for the instance's group index. */
  | { readonly kind: "group"; readonly name: string };

/** How a mapped task or group gets its instances. */
export type Mapping =
  /** `expand({...})`: the cross product of the kwargs, first kwarg outermost. */
  | { readonly kind: "product"; readonly kwargs: Readonly<Record<string, ValueSource>> }
  /** `expandKwargs(list)`: one instance per object of the list; the object supplies the kwargs. */
  | { readonly kind: "kwargs"; readonly source: ValueSource };

export const TRIGGER_RULES = [
  "all_success", "all_failed", "all_done", "all_skipped", "one_success", "one_failed", "one_done",
  "none_failed", "none_failed_min_one_success", "none_skipped", "always",
] as const;
export type TriggerRule = (typeof TRIGGER_RULES)[number];

export const OPERATORS = ["function", "shell"] as const;
export type Operator = (typeof OPERATORS)[number];

export type TaskOptions = {
  readonly retries: number;
  readonly retryDelayMs: number;
  /** Double the delay on every further try (Airflow's retry_exponential_backoff). */
  readonly retryExponentialBackoff: boolean;
  /** Cap on a backed-off retry delay; null for none. */
  readonly maxRetryDelayMs: number | null;
  readonly timeoutMs: number | null;
  readonly queue: string;
  readonly triggerRule: TriggerRule;
  /** null: the coordinator's global limit (`--max-map-length`, `MAPFLOW_MAX_MAP_LENGTH`). */
  readonly maxMapLength: number | null;
  /** Instances of this task running at once in one run (Airflow's max_active_tis_per_dagrun). */
  readonly maxActivePerRun: number | null;
  /** Instances of this task running at once across all runs (max_active_tis_per_dag). */
  readonly maxActive: number | null;
  /** Id of the `mapIndexLabel` function, run by the worker; null for none. */
  readonly mapIndexLabel: string | null;
  /** A reduce that also receives which map indexes of its upstreams failed (`ctx.upstreamStates`). */
  readonly partialResults: boolean;
};

export type TaskSpec = {
  readonly id: string;
  readonly operator: Operator;
  /** Arguments held constant across instances (a plain call, or `partial`). */
  readonly args: Readonly<Record<string, ValueSource>>;
  /** How the task maps; null when it is not mapped by itself. */
  readonly mapping: Mapping | null;
  /** The mapped task group it belongs to: then it has one instance per group index (or several, if mapped too). */
  readonly group: string | null;
  /** Every task this one waits for: data dependencies and `after` ones. */
  readonly upstream: readonly string[];
  readonly options: TaskOptions;
};

/** `taskGroup(id, fn).expand(args)`: a sub-graph with one copy per group index. */
export type GroupSpec = {
  readonly id: string;
  readonly args: Readonly<Record<string, ValueSource>>;
  readonly mapping: Mapping;
  /** Tasks whose outputs the group's arguments read. */
  readonly upstream: readonly string[];
};

export type DagSpec = {
  readonly id: string;
  readonly description: string | null;
  /** Where the schedule's first data interval may start: an ISO date or date-time, UTC unless it says otherwise. */
  readonly startDate: string | null;
  /** Create a run for every interval missed since `startDate` (or the last scheduled run), not only the latest. */
  readonly catchup: boolean;
  /**
   * When the coordinator starts runs by itself: an Airflow preset (`@daily`)
   * or a 5-field cron expression, in UTC. Absent: manual runs only. Left out
   * of the spec rather than null when unset, so DAGs without one keep the
   * version they had before schedules existed (and older specs read the same).
   */
  readonly schedule?: string;
  /** Unfinished runs at once, beyond which scheduled runs wait (Airflow's max_active_runs); absent: 16. */
  readonly maxActiveRuns?: number;
  /** Fails the unfinished instances of a run that takes longer; null for none. */
  readonly runTimeoutMs: number | null;
  /** Declared `--conf` keys with their defaults; a key not declared is an error. Null: any conf. */
  readonly params: Readonly<Record<string, unknown>> | null;
  /** Tasks in definition order; the SDK guarantees upstreams come first. */
  readonly tasks: readonly TaskSpec[];
  readonly groups: readonly GroupSpec[];
};

/** Airflow's default `max_map_length` is 1024, a limit its users keep raising. */
export const DEFAULT_MAX_MAP_LENGTH = 100_000;

export const DEFAULT_TASK_OPTIONS: TaskOptions = {
  retries: 0,
  retryDelayMs: 0,
  retryExponentialBackoff: false,
  maxRetryDelayMs: null,
  timeoutMs: null,
  queue: "default",
  triggerRule: "all_success",
  maxMapLength: null,
  maxActivePerRun: null,
  maxActive: null,
  mapIndexLabel: null,
  partialResults: false,
};

/** Every task option there is, named once by its default. */
export const TASK_OPTION_NAMES: ReadonlySet<string> = new Set(Object.keys(DEFAULT_TASK_OPTIONS));

/** Names that configure a task and so can never be mapped: its options, and Airflow's task_id and pool (Airflow forbids mapping them). */
export const OPTION_NAMES: ReadonlySet<string> = new Set([...TASK_OPTION_NAMES, "taskId", "task_id", "pool"]);

/** Settings and cross-run facts of the deciding service that the pure core needs as input. */
export type DecideSettings = {
  readonly maxMapLength: number;
  /** Instances of a task holding a slot across every run of its DAG (for `maxActive`); absent: this run's only. */
  readonly activeAcrossRuns?: (dagId: string, taskId: string) => number;
};
export const DEFAULT_DECIDE_SETTINGS: DecideSettings = { maxMapLength: DEFAULT_MAX_MAP_LENGTH };

export function taskSpec(spec: DagSpec, taskId: string): TaskSpec {
  const found = spec.tasks.find((t) => t.id === taskId);
  if (!found) throw new Error(`DAG '${spec.id}' has no task '${taskId}'`);
  return found;
}

export function groupSpec(spec: DagSpec, groupId: string): GroupSpec {
  const found = spec.groups.find((g) => g.id === groupId);
  if (!found) throw new Error(`DAG '${spec.id}' has no task group '${groupId}'`);
  return found;
}

/** Mapped: it has instances with map indexes 0…n-1, by its own mapping or its group's. */
export function isMapped(task: TaskSpec): boolean {
  return task.mapping !== null || task.group !== null;
}

/** Its instances wait for a slot before their work goes out. */
export function isLimited(task: TaskSpec): boolean {
  return task.options.maxActivePerRun !== null || task.options.maxActive !== null;
}

/** The delay before try `nextTry` of an instance (tries count from 1). */
export function retryDelay(options: TaskOptions, nextTry: number): number {
  if (!options.retryExponentialBackoff) return options.retryDelayMs;
  const grown = options.retryDelayMs * 2 ** Math.max(0, nextTry - 2);
  return options.maxRetryDelayMs === null ? grown : Math.min(grown, options.maxRetryDelayMs);
}
