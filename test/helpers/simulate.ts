/**
 * Runs a compiled DAG in memory with the pure core: decide → evolve →
 * workFor → the task function → a result event, until the run finishes.
 * What the services do over NATS, minus NATS; for unit tests of semantics.
 */
import pino from "pino";
import { decide, evolve, failureOf, fold, workFor, type RunState, type WorkItem } from "../../libs/core/index.ts";
import type { RunEvent } from "../../libs/events/index.ts";
import type { Dag, TaskContext } from "../../libs/sdk/types.ts";
import { renderLabel, taskArgs } from "../../services/worker/inputs.ts";
import { taskSpec, type DecideSettings } from "../../libs/core/spec.ts";

const log = pino({ level: "silent" });

export type Simulation = { state: RunState; events: RunEvent[]; work: WorkItem[] };

type Options = { conf?: Record<string, unknown>; settings?: DecideSettings; order?: "forward" | "reverse"; fail?: (item: WorkItem) => boolean };

export async function simulate(dag: Dag, options: Options = {}): Promise<Simulation> {
  const events: RunEvent[] = [{ type: "RunRequested", runId: "R", dagId: dag.spec.id, dagVersion: "v", spec: dag.spec, conf: options.conf ?? {}, at: 1 }];
  const sim: Simulation = { state: fold(events)!, events, work: [] };
  return drive(dag, sim, [], options);
}

/** Appends an operator's event to a simulated run and drives it to its end again. */
export async function operate(dag: Dag, sim: Simulation, event: RunEvent, options: Options = {}): Promise<Simulation> {
  sim.events.push(event);
  evolve(sim.state, event);
  return drive(dag, sim, workFor(sim.state, event), options);
}

async function drive(dag: Dag, sim: Simulation, initial: WorkItem[], options: Options): Promise<Simulation> {
  const { state, events } = sim;
  let now = events[events.length - 1]!.at;
  let work = initial;
  for (let round = 0; round < 1000; round++) {
    if (options.order === "reverse") work.reverse();
    for (const item of work) {
      sim.work.push(item);
      const operator = dag.operators.get(item.taskId)!;
      const base = { runId: "R", taskId: item.taskId, mapIndex: item.mapIndex, try: item.try, worker: "sim", startedAt: now, at: ++now };
      let label: string | undefined;
      let event: RunEvent;
      try {
        if (operator.kind !== "function") throw new Error("the simulator runs function tasks only");
        if (options.fail?.(item)) throw new Error("failed by the test");
        const args = await taskArgs(item, dag.functions, async () => {
          throw new Error("the in-memory simulation stores no values by reference");
        });
        label = renderLabel(taskSpec(dag.spec, item.taskId).options.mapIndexLabel, args, dag.functions);
        const ctx: TaskContext = {
          log, dagId: item.dagId, runId: "R", taskId: item.taskId, mapIndex: item.mapIndex, tryNumber: item.try,
          conf: item.conf, signal: new AbortController().signal, ...(item.upstreamStates ? { upstreamStates: item.upstreamStates } : {}),
          artifact: () => Promise.reject(new Error("the in-memory simulation stores no artifacts")),
          get kv(): never {
            throw new Error("the in-memory simulation has no ctx.kv");
          },
          logicalDate: new Date(item.logicalDate!), dataIntervalStart: new Date(item.dataIntervalStart!), dataIntervalEnd: new Date(item.dataIntervalEnd!),
        };
        const result = await operator.fn(args, ctx);
        event = { type: "InstanceSucceeded", ...base, result, ...(label !== undefined ? { label } : {}) };
      } catch (err) {
        event = { type: "InstanceFailed", ...base, ...failureOf(err), ...(label !== undefined ? { label } : {}) };
      }
      events.push(event);
      evolve(state, event);
    }
    if (state.state !== "running" && state.state !== "queued") break;
    work = [];
    for (const event of decide(state, ++now, options.settings)) {
      events.push(event);
      evolve(state, event);
      work.push(...workFor(state, event));
    }
  }
  return sim;
}

/** The results of a task's successful instances, in map-index order. */
export function resultsOf(state: RunState, taskId: string): unknown[] {
  return (state.tasks[taskId]?.instances ?? []).filter((i) => i.state === "success").map((i) => i.result);
}
