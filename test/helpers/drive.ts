/**
 * A run driven by hand through the pure core: its request, the coordinator's
 * first decisions, then each given event followed by what the coordinator
 * decides after it. `observe` sees each event with the state from before it.
 */
import { decide, evolve, type RunState } from "../../libs/core/index.ts";
import type { RunEvent } from "../../libs/events/index.ts";
import type { DagSpec } from "../../libs/core/spec.ts";

export function driveRun(spec: DagSpec, events: readonly RunEvent[], observe: (event: RunEvent, before: RunState | undefined) => void = () => {}, decideAt = 10): RunState {
  let state: RunState | undefined;
  const apply = (event: RunEvent) => {
    observe(event, state);
    state = evolve(state, event);
  };
  apply({ type: "RunRequested", runId: "R", dagId: spec.id, dagVersion: "v", spec, conf: {}, at: 1 });
  for (const e of decide(state!, 2)) apply(e);
  for (const event of events) {
    apply(event);
    for (const e of decide(state!, decideAt)) apply(e);
  }
  return state!;
}
