/**
 * Expansion math: how many instances a mapped task gets and which arguments
 * each one receives. A list maps one instance per item; an object one per
 * `[key, value]` entry in insertion order; several mapped kwargs give the
 * cross product with the first kwarg outermost; `expandKwargs` one instance
 * per object. Tasks of a mapped task group get one instance per group index
 * (or, when mapped themselves, their own expansion per group index).
 *
 * User code never runs here: an item that must go through `out.map(fn)`
 * becomes a `Deferred`, which the worker resolves before the task runs.
 */
import type { Instance, RunState, TaskStateName } from "./state.ts";
import { taskStateOf } from "./state.ts";
import { groupSpec, OPTION_NAMES, taskSpec, type GroupSpec, type Mapping, type TaskSpec, type ValueSource } from "./spec.ts";
import { triggerVerdict } from "./trigger.ts";
import { StoredValue } from "./stored.ts";

/** A value that cannot be mapped over; the message says what mapping needs. */
export class NotMappableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "NotMappableError";
  }
}

/** An item still to go through transform `fn` (an `out.map(fn)`), on the worker. */
export class Deferred {
  constructor(readonly fn: string, readonly input: unknown) {}
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (value === undefined) return "nothing (undefined)";
  if (Array.isArray(value)) return "a list";
  return `a ${typeof value}`;
}

function origin(source: ValueSource): string {
  switch (source.kind) {
    case "output":
      return `upstream task '${source.task}' returned`;
    case "group":
      return `group argument '${source.name}' is`;
    default:
      return "it got";
  }
}

/** Where an instance's inputs are read: for a task inside a mapped group, its group index and the group's arguments. */
type Scope = { readonly task: TaskSpec; readonly group: number | null; readonly groupArgs: Resolved | null };

/** The results of instances `from…to` that produced one, in map-index order (Airflow drops None). */
function results(instances: readonly Instance[], from = 0, to = instances.length): unknown[] {
  const out: unknown[] = [];
  for (let n = from; n < to; n++) {
    const i = instances[n]!;
    if (i.state === "success" && i.result !== undefined && i.result !== null) out.push(i.result);
  }
  return out;
}

/** Where group index g's instances start, in a task mapped inside a mapped group. */
function groupOffsets(counts: readonly number[]): number[] {
  const offsets = [0];
  for (const c of counts) offsets.push(offsets[offsets.length - 1]! + c);
  return offsets;
}

function outputOf(state: RunState, upstreamId: string, scope: Scope): unknown {
  const upstream = state.tasks[upstreamId];
  if (!upstream) throw new Error(`run ${state.runId} has no task '${upstreamId}'`);
  const spec = taskSpec(state.spec, upstreamId);
  const instances = upstream.instances ?? [];
  if (spec.group !== null) {
    const nested = spec.mapping !== null;
    const offsets = nested ? groupOffsets(upstream.groupCounts ?? []) : null;
    const atGroup = (g: number): unknown => {
      if (offsets) return results(instances, offsets[g] ?? 0, offsets[g + 1] ?? 0);
      const i = instances[g];
      return i?.state === "success" ? i.result : undefined;
    };
    // Same group: the value that belongs to this group index, nulls kept so indexes stay aligned.
    if (spec.group === scope.task.group && scope.group !== null) return atGroup(scope.group);
    if (!offsets) return results(instances);
    return Array.from({ length: (upstream.groupCounts ?? []).length }, (_, g) => atGroup(g));
  }
  if (upstream.mapped) return results(instances);
  const only = instances[0];
  return only?.state === "success" ? only.result : undefined;
}

/** A source's value for one scope. Items of `out.map(fn)` come back as `Deferred`. */
export function resolveSource(state: RunState, source: ValueSource, scope: Scope): unknown {
  switch (source.kind) {
    case "literal":
      return source.value;
    case "output":
      return outputOf(state, source.task, scope);
    case "group": {
      if (scope.group === null || scope.groupArgs === null) throw new Error(`task '${scope.task.id}' reads group argument '${source.name}' outside its group`);
      return scope.groupArgs.input(scope.group).args[source.name];
    }
    case "map":
      return itemsOf(state, source.source, scope, `task '${scope.task.id}'`).map((item) => new Deferred(source.fn, item));
    case "zip": {
      const lists = source.sources.map((s) => itemsOf(state, s, scope, `task '${scope.task.id}'`));
      const lengths = lists.map((l) => l.length);
      const length = lists.length === 0 ? 0 : source.fill ? Math.max(...lengths) : Math.min(...lengths);
      const fill = source.fill?.value;
      return Array.from({ length }, (_, i) => lists.map((l) => (i < l.length ? l[i] : fill)));
    }
    case "concat":
      return source.sources.flatMap((s) => itemsOf(state, s, scope, `task '${scope.task.id}'`));
    default: {
      const unknown: never = source;
      throw new Error(`unknown value source ${JSON.stringify(unknown)}`);
    }
  }
}

/** The items a source maps over; `who` names the consumer in the error ("task 'm'", "task group 'g'"). */
function itemsOf(state: RunState, source: ValueSource, scope: Scope, who: string, kwarg?: string): readonly unknown[] {
  const resolved = resolveSource(state, source, scope);
  const value = resolved instanceof StoredValue ? resolved.value() : resolved;
  if (Array.isArray(value)) return value;
  if (typeof value === "object" && value !== null && !(value instanceof Deferred)) return Object.entries(value);
  const over = kwarg === undefined ? "" : ` over '${kwarg}'`;
  throw new NotMappableError(
    `${who} cannot map${over}: ${origin(source)} ${describe(value)}, but mapping needs a list (one instance per item) or an object (one per [key, value] entry)`,
  );
}

/** What one instance receives: its arguments, and for `expandKwargs` over `out.map(fn)` or stored items an object the worker merges in. */
export type InstanceInput = { readonly args: Readonly<Record<string, unknown>>; readonly spread?: Deferred | StoredValue };

/** One mapping resolved in one scope: a count, and each index's input. */
type Resolved = { readonly count: number; input(i: number): InstanceInput };

function constantArgs(state: RunState, args: Readonly<Record<string, ValueSource>>, scope: Scope): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, source] of Object.entries(args)) out[name] = resolveSource(state, source, scope);
  return out;
}

/**
 * Why an `expandKwargs` object cannot be one instance's arguments beside the
 * constant ones given to partial() (`given`), or undefined. As in Airflow,
 * an argument given in both places is an error, not one silently winning.
 */
export function kwargsConflict(item: object, given: (name: string) => boolean): string | undefined {
  for (const key of Object.keys(item)) {
    if (OPTION_NAMES.has(key)) return `sets '${key}', a task option that cannot be mapped; set it in the task's options instead`;
    if (given(key)) return `sets '${key}', which partial() already gives; give each argument in one place`;
  }
  return undefined;
}

function resolveMapping(state: RunState, mapping: Mapping, constant: Record<string, unknown>, scope: Scope, owner: string, check: boolean): Resolved {
  if (mapping.kind === "kwargs") {
    const items = itemsOf(state, mapping.source, scope, owner);
    if (check) items.forEach((item, i) => {
      if (item instanceof Deferred || item instanceof StoredValue) return; // checked by the worker once it has the object
      if (typeof item !== "object" || item === null || Array.isArray(item)) {
        throw new NotMappableError(`${owner}: expandKwargs needs a list of objects, but item ${i} is ${describe(item)}`);
      }
      const conflict = kwargsConflict(item, (name) => Object.hasOwn(constant, name));
      if (conflict) throw new NotMappableError(`${owner}: expandKwargs item ${i} ${conflict}`);
    });
    return {
      count: items.length,
      input: (i) => {
        const item = items[i];
        return item instanceof Deferred || item instanceof StoredValue ? { args: constant, spread: item } : { args: { ...constant, ...(item as object) } };
      },
    };
  }
  const kwargs = Object.keys(mapping.kwargs);
  const lists = kwargs.map((k) => itemsOf(state, mapping.kwargs[k]!, scope, owner, k));
  const count = lists.reduce((n, list) => n * list.length, kwargs.length === 0 ? 0 : 1);
  return {
    count,
    // Mixed-radix digits of the index, first kwarg most significant.
    input: (i) => {
      const args: Record<string, unknown> = { ...constant };
      let rest = i;
      for (let k = kwargs.length - 1; k >= 0; k--) {
        const list = lists[k]!;
        args[kwargs[k]!] = list[rest % list.length];
        rest = Math.floor(rest / list.length);
      }
      return { args };
    },
  };
}

/** A mapped group's arguments per group index; its inputs are finished before any of its tasks start. */
function resolveGroup(state: RunState, group: GroupSpec, check: boolean): Resolved {
  const scope: Scope = { task: { id: group.id, group: null } as TaskSpec, group: null, groupArgs: null };
  const resolved = resolveMapping(state, group.mapping, constantArgs(state, group.args, scope), scope, `task group '${group.id}'`, check);
  for (let g = 0; check && g < resolved.count; g++) {
    if (resolved.input(g).spread) throw new NotMappableError(`task group '${group.id}' cannot expandKwargs over items it cannot read itself (out.map(fn), or results over 1 MB kept in the object store); build the objects in an upstream task instead`);
  }
  return resolved;
}

/** State of an in-group upstream at group index g, for per-index trigger rules. */
function alignedState(state: RunState, upstream: TaskSpec, g: number): TaskStateName {
  const run = state.tasks[upstream.id]!;
  const instances = run.instances ?? [];
  let slice: readonly Instance[];
  if (upstream.mapping === null) {
    slice = instances[g] ? [instances[g]!] : [];
  } else {
    const offsets = groupOffsets(run.groupCounts ?? []);
    slice = instances.slice(offsets[g] ?? 0, offsets[g + 1] ?? 0);
  }
  if (run.instances === null) return run.state; // skipped or failed as a whole, before it had instances
  return run.groupSettled?.[g] ?? taskStateOf(slice);
}

/** The trigger rule of a task inside a mapped group, judged for one group index. */
export function groupIndexVerdict(state: RunState, task: TaskSpec, g: number) {
  const inGroup = task.upstream.map((id) => taskSpec(state.spec, id)).filter((u) => u.group === task.group);
  const outside = task.upstream.filter((id) => taskSpec(state.spec, id).group !== task.group).map((id) => state.tasks[id]!.state);
  return triggerVerdict(task.options.triggerRule, [...outside, ...inGroup.map((u) => alignedState(state, u, g))]);
}

/** A whole task's expansion: its count, which instances must not run, and each one's input. */
export type Expansion = {
  readonly count: number;
  /** Instances per group index, for a task mapped inside a mapped group. */
  readonly groupCounts?: number[];
  /**
   * Settled at expansion because their group index's upstreams failed or were skipped: map indexes,
   * or for a task mapped inside the group (which then has no instances there) group indexes.
   */
  readonly settled: readonly (readonly [number, "skipped" | "upstream_failed"])[];
  input(mapIndex: number): InstanceInput;
};

/**
 * Resolves a task's inputs into its expansion. `check` (when the task is
 * expanded or its instances rerun) fails a bad `expandKwargs` item with a
 * NotMappableError. Building work for instances already expanded does not
 * check again: those were accepted when they were expanded (perhaps under
 * an older rule, in a run begun before an upgrade), and an error there would
 * leave them queued forever instead of failing anything.
 */
export function resolveExpansion(state: RunState, task: TaskSpec, check = true): Expansion {
  if (task.group === null) {
    const scope: Scope = { task, group: null, groupArgs: null };
    const constant = constantArgs(state, task.args, scope);
    if (task.mapping === null) return { count: 1, settled: [], input: () => ({ args: constant }) };
    return { ...resolveMapping(state, task.mapping, constant, scope, `task '${task.id}'`, check), settled: [] };
  }
  const groupArgs = resolveGroup(state, groupSpec(state.spec, task.group), check);
  const groups = groupArgs.count;
  const settled: [number, "skipped" | "upstream_failed"][] = [];
  const perGroup: (Resolved | null)[] = [];
  for (let g = 0; g < groups; g++) {
    const verdict = groupIndexVerdict(state, task, g);
    if (verdict.kind === "skip") {
      settled.push([g, verdict.state]);
      perGroup.push(null);
      continue;
    }
    const scope: Scope = { task, group: g, groupArgs };
    const constant = constantArgs(state, task.args, scope);
    perGroup.push(task.mapping === null ? { count: 1, input: () => ({ args: constant }) } : resolveMapping(state, task.mapping, constant, scope, `task '${task.id}'`, check));
  }
  if (task.mapping === null) {
    return { count: groups, settled, input: (g) => perGroup[g]?.input(0) ?? { args: {} } };
  }
  // Mapped inside a mapped group: group g's instances follow group g-1's; a settled group index has none.
  const groupCounts = perGroup.map((r) => r?.count ?? 0);
  const offsets = groupOffsets(groupCounts);
  return {
    count: offsets[groups]!,
    groupCounts,
    settled,
    input: (i) => {
      const g = groupAt(offsets, i);
      return perGroup[g]!.input(i - offsets[g]!);
    },
  };
}

/** The group index whose instances hold flat index i (offsets ascend; binary search). */
function groupAt(offsets: readonly number[], i: number): number {
  let lo = 0;
  let hi = offsets.length - 2;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (offsets[mid]! <= i) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** The group index of each instance of a task mapped inside a mapped group. */
export function groupIndexes(groupCounts: readonly number[]): number[] {
  return groupCounts.flatMap((c, g) => Array.from({ length: c }, () => g));
}
