/**
 * The serialisable shape of a DAG, as the SDK compiles it. It holds no user
 * code: the coordinator reads only this, and workers look functions up by
 * task id in the DAG file they loaded.
 */

/** Where an argument's value comes from. */
export type ValueSource =
  | { readonly kind: "literal"; readonly value: unknown }
  /** An upstream task's output: its result, or for a mapped task the list of its results in map-index order. */
  | { readonly kind: "output"; readonly task: string };

export const TRIGGER_RULES = ["all_success", "all_done"] as const;
export type TriggerRule = (typeof TRIGGER_RULES)[number];

export const OPERATORS = ["function", "shell"] as const;
export type Operator = (typeof OPERATORS)[number];

export type TaskOptions = {
  readonly retries: number;
  readonly retryDelayMs: number;
  readonly timeoutMs: number | null;
  readonly queue: string;
  readonly triggerRule: TriggerRule;
  readonly maxMapLength: number;
};

export type TaskSpec = {
  readonly id: string;
  readonly operator: Operator;
  /** Arguments held constant across instances (a plain call, or `partial`). */
  readonly args: Readonly<Record<string, ValueSource>>;
  /** Mapped arguments (`expand`); null when the task is not mapped. */
  readonly expand: Readonly<Record<string, ValueSource>> | null;
  /** Every task this one waits for: data dependencies and `after` ones. */
  readonly upstream: readonly string[];
  readonly options: TaskOptions;
};

export type DagSpec = {
  readonly id: string;
  readonly description: string | null;
  readonly startDate: string | null;
  readonly catchup: boolean;
  /** Tasks in definition order; the SDK guarantees upstreams come first. */
  readonly tasks: readonly TaskSpec[];
};

/** Airflow's default `max_map_length` is 1024, a limit its users keep raising. */
export const DEFAULT_MAX_MAP_LENGTH = 100_000;

export const DEFAULT_TASK_OPTIONS: TaskOptions = {
  retries: 0,
  retryDelayMs: 0,
  timeoutMs: null,
  queue: "default",
  triggerRule: "all_success",
  maxMapLength: DEFAULT_MAX_MAP_LENGTH,
};

export function taskSpec(spec: DagSpec, taskId: string): TaskSpec {
  const found = spec.tasks.find((t) => t.id === taskId);
  if (!found) throw new Error(`DAG '${spec.id}' has no task '${taskId}'`);
  return found;
}
