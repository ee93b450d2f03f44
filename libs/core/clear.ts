/**
 * What a clear re-runs. Clearing chosen instances of a task with
 * `downstream` re-runs only the downstream instances that derive from them
 * — in an index-aligned chain or a mapped group — instead of every
 * downstream instance, as Airflow does (apache/airflow#41278). Where an
 * instance's inputs mix several upstream items, the whole task re-runs.
 */
import type { RunState } from "./state.ts";
import { taskSpec, type TaskSpec, type ValueSource } from "./spec.ts";

/** Per task: the map indexes to re-run, or null for the whole task (it expands again). */
export type ClearPlan = Map<string, readonly number[] | null>;

/** The task a source reads item by item, through any `out.map` transforms. */
function itemSource(source: ValueSource): string | null {
  if (source.kind === "output") return source.task;
  if (source.kind === "map") return itemSource(source.source);
  return null;
}

function mentions(source: ValueSource, taskId: string): boolean {
  switch (source.kind) {
    case "output":
      return source.task === taskId;
    case "map":
      return mentions(source.source, taskId);
    case "zip":
    case "concat":
      return source.sources.some((s) => mentions(s, taskId));
    default:
      return false;
  }
}

/** Positions in an upstream's output list (non-null results, by map index) of the chosen instances. */
function outputPositions(state: RunState, upstreamId: string, chosen: ReadonlySet<number>): number[] {
  const positions: number[] = [];
  let position = 0;
  for (const i of state.tasks[upstreamId]?.instances ?? []) {
    if (i.state !== "success" || i.result === undefined || i.result === null) continue;
    if (chosen.has(i.mapIndex)) positions.push(position);
    position++;
  }
  return positions;
}

/** The instances of `task` that derive from `chosen` instances of `upstreamId`; null when all do. */
function derived(state: RunState, task: TaskSpec, upstreamId: string, chosen: readonly number[]): readonly number[] | null {
  const upstream = taskSpec(state.spec, upstreamId);
  const set = new Set(chosen);
  if (task.group !== null && task.group === upstream.group) {
    const upInstances = state.tasks[upstreamId]?.instances ?? [];
    const groups = new Set(upstream.mapping === null ? chosen : chosen.map((i) => upInstances[i]?.group ?? -1));
    const mine = state.tasks[task.id]?.instances ?? [];
    if (task.mapping === null) return [...groups].filter((g) => g < mine.length).sort((a, b) => a - b);
    return mine.filter((i) => i.state !== "removed" && groups.has(i.group ?? -1)).map((i) => i.mapIndex);
  }
  if (task.group !== null || task.mapping === null) return null;
  const sources = task.mapping.kind === "kwargs" ? [task.mapping.source] : Object.values(task.mapping.kwargs);
  if (sources.length !== 1 || itemSource(sources[0]!) !== upstreamId) return null;
  if (Object.values(task.args).some((s) => mentions(s, upstreamId))) return null; // every instance also reads it whole
  // A chosen instance with no item in the output now (failed, null) may gain one: positions shift, so all re-run.
  const upInstances = state.tasks[upstreamId]?.instances ?? [];
  const itemless = chosen.some((i) => {
    const instance = upInstances[i];
    return instance?.state !== "success" || instance.result === undefined || instance.result === null;
  });
  if (itemless) return null;
  return outputPositions(state, upstreamId, set);
}

function union(a: readonly number[] | null | undefined, b: readonly number[] | null): readonly number[] | null {
  if (a === null || b === null) return null;
  return [...new Set([...(a ?? []), ...b])].sort((x, y) => x - y);
}

export function clearPlan(state: RunState, taskId: string, mapIndexes: readonly number[] | null, downstream: boolean): ClearPlan {
  const plan: ClearPlan = new Map([[taskId, mapIndexes]]);
  if (!downstream) return plan;
  // Tasks are in topological order, so every upstream's share is known before its downstream is reached.
  for (const task of state.spec.tasks) {
    if (task.id === taskId) continue;
    for (const up of task.upstream) {
      if (!plan.has(up)) continue;
      const chosen = plan.get(up)!;
      const mine = chosen === null ? null : derived(state, task, up, chosen);
      plan.set(task.id, union(plan.has(task.id) ? plan.get(task.id) : [], mine));
    }
  }
  return plan;
}
