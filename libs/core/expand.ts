/**
 * Expansion math: how many instances a mapped task gets and which arguments
 * each one receives. A list maps one instance per item; an object one per
 * `[key, value]` entry in insertion order; several mapped kwargs give the
 * cross product with the first kwarg outermost.
 */
import type { RunState } from "./state.ts";
import type { TaskSpec, ValueSource } from "./spec.ts";

/** A value that cannot be mapped over; the message says what mapping needs. */
export class NotMappableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "NotMappableError";
  }
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (value === undefined) return "nothing (undefined)";
  if (Array.isArray(value)) return "a list";
  return `a ${typeof value}`;
}

/** The output of an upstream task: a mapped task's non-null results in map-index order. */
export function resolveSource(state: RunState, source: ValueSource): unknown {
  if (source.kind === "literal") return source.value;
  const upstream = state.tasks[source.task];
  if (!upstream) throw new Error(`run ${state.runId} has no task '${source.task}'`);
  const instances = upstream.instances ?? [];
  if (upstream.mapped) {
    return instances
      .filter((i) => i.state === "success" && i.result !== undefined && i.result !== null)
      .map((i) => i.result);
  }
  const only = instances[0];
  return only?.state === "success" ? only.result : undefined;
}

export function mappableItems(taskId: string, kwarg: string, value: unknown): readonly unknown[] {
  if (Array.isArray(value)) return value;
  if (typeof value === "object" && value !== null) return Object.entries(value);
  throw new NotMappableError(
    `task '${taskId}' cannot map over '${kwarg}': it got ${describe(value)}, but mapping needs a list (one instance per item) or an object (one per [key, value] entry)`,
  );
}

/** Resolved inputs of one mapped task: constant args plus one item list per mapped kwarg. */
export type Expansion = {
  readonly constant: Readonly<Record<string, unknown>>;
  readonly kwargs: readonly string[];
  readonly items: readonly (readonly unknown[])[];
  readonly count: number;
};

export function resolveConstant(state: RunState, task: TaskSpec): Record<string, unknown> {
  const args: Record<string, unknown> = {};
  for (const [name, source] of Object.entries(task.args)) args[name] = resolveSource(state, source);
  return args;
}

export function resolveExpansion(state: RunState, task: TaskSpec): Expansion {
  const constant = resolveConstant(state, task);
  const kwargs = Object.keys(task.expand ?? {});
  const items = kwargs.map((k) => mappableItems(task.id, k, resolveSource(state, task.expand![k]!)));
  const count = items.reduce((n, list) => n * list.length, kwargs.length === 0 ? 0 : 1);
  return { constant, kwargs, items, count };
}

/** Arguments of instance `mapIndex`: mixed-radix digits of the index, first kwarg most significant. */
export function instanceArgs(expansion: Expansion, mapIndex: number): Record<string, unknown> {
  const args: Record<string, unknown> = { ...expansion.constant };
  let rest = mapIndex;
  for (let k = expansion.kwargs.length - 1; k >= 0; k--) {
    const list = expansion.items[k]!;
    args[expansion.kwargs[k]!] = list[rest % list.length];
    rest = Math.floor(rest / list.length);
  }
  return args;
}
