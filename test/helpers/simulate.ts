/**
 * Runs a compiled DAG in memory with the pure core: decide → evolve →
 * workFor → the task function → a result event, until the run finishes.
 * What the services do over NATS, minus NATS; for unit tests of semantics.
 */
import pino from "pino";
import { decide, evolve, fold, workFor, type RunState, type WorkItem } from "../../libs/core/index.ts";
import type { RunEvent } from "../../libs/events/index.ts";
import type { Dag, TaskContext } from "../../libs/sdk/types.ts";
import { renderLabel, taskArgs } from "../../services/worker/inputs.ts";
import { taskSpec, type DecideSettings } from "../../libs/core/spec.ts";

const log = pino({ level: "silent" });

export type Simulation = { state: RunState; events: RunEvent[]; work: WorkItem[] };

export async function simulate(dag: Dag, options: { conf?: Record<string, unknown>; settings?: DecideSettings; order?: "forward" | "reverse" } = {}): Promise<Simulation> {
  let now = 1;
  const events: RunEvent[] = [{ type: "RunRequested", runId: "R", dagId: dag.spec.id, dagVersion: "v", spec: dag.spec, conf: options.conf ?? {}, at: now }];
  const state = fold(events)!;
  const all: WorkItem[] = [];
  for (let round = 0; round < 1000 && (state.state === "running" || state.state === "queued"); round++) {
    const work: WorkItem[] = [];
    for (const event of decide(state, ++now, options.settings)) {
      events.push(event);
      evolve(state, event);
      work.push(...workFor(state, event));
    }
    if (options.order === "reverse") work.reverse();
    for (const item of work) {
      all.push(item);
      const operator = dag.operators.get(item.taskId)!;
      const base = { runId: "R", taskId: item.taskId, mapIndex: item.mapIndex, try: item.try, worker: "sim", startedAt: now, at: ++now };
      let label: string | undefined;
      let event: RunEvent;
      try {
        if (operator.kind !== "function") throw new Error("the simulator runs function tasks only");
        const args = await taskArgs(item, dag.functions);
        label = renderLabel(taskSpec(dag.spec, item.taskId).options.mapIndexLabel, args, dag.functions);
        const ctx: TaskContext = {
          log, dagId: item.dagId, runId: "R", taskId: item.taskId, mapIndex: item.mapIndex, tryNumber: item.try,
          conf: item.conf, signal: new AbortController().signal, ...(item.upstreamStates ? { upstreamStates: item.upstreamStates } : {}),
        };
        const result = await operator.fn(args, ctx);
        event = { type: "InstanceSucceeded", ...base, result, ...(label !== undefined ? { label } : {}) };
      } catch (err) {
        event = { type: "InstanceFailed", ...base, error: { name: "Error", message: (err as Error).message }, ...(label !== undefined ? { label } : {}) };
      }
      events.push(event);
      evolve(state, event);
    }
  }
  return { state, events, work: all };
}

/** The results of a task's successful instances, in map-index order. */
export function resultsOf(state: RunState, taskId: string): unknown[] {
  return (state.tasks[taskId]?.instances ?? []).filter((i) => i.state === "success").map((i) => i.result);
}
