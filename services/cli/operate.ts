/**
 * Operators' requests on a run — clear, cancel, mark — checked against the
 * run as the log has it, then appended on the run's request subject for
 * the coordinator to act on. Shared by the CLI and (later) the web API.
 */
import { FINISHED_RUN_STATES, type RunState } from "../../libs/core/index.ts";
import type { OperatorEvent } from "../../libs/events/index.ts";
import { isToken, isTaskId, subjects } from "../../libs/names/index.ts";
import { appendEvent, foldRun, hasMessageFrom, type Nats } from "../../libs/nats/index.ts";
import { BadInputError } from "../../libs/errors.ts";
import { createLogger } from "../../libs/log/index.ts";

const notInLog = (runId: string) =>
  new BadInputError(`run '${runId}' is not in the log of this stack; check the run id ('run', 'trigger' and 'runs list' print it) and the stack (--data / --nats)`);

/** The run as the log has it now; a clear error if there is none. */
export async function currentRun(nats: Nats, runId: string): Promise<RunState> {
  if (!isToken(runId)) throw new BadInputError(`'${runId}' is not a valid run id`);
  // A run the log does not have: a follower would wait for its first event for ever.
  if (!(await hasMessageFrom(nats.js, subjects.run(runId), 1))) throw notInLog(runId);
  const { state } = await foldRun(nats, runId, Number.MAX_SAFE_INTEGER, createLogger("cli", "warn"));
  if (!state) throw notInLog(runId);
  return state;
}

function checkTask(state: RunState, taskId: string): void {
  if (!isTaskId(taskId) || !state.tasks[taskId]) {
    throw new BadInputError(`run ${state.runId} (DAG '${state.dagId}') has no task '${taskId}'; its tasks: ${Object.keys(state.tasks).join(", ")}`);
  }
}

function checkIndexes(state: RunState, taskId: string, mapIndexes: readonly number[]): void {
  const task = state.tasks[taskId]!;
  const known = new Set((task.instances ?? []).filter((i) => i.state !== "removed").map((i) => i.mapIndex));
  for (const i of mapIndexes) {
    if (!known.has(i)) {
      const range = task.mapped ? `0…${(task.instances?.length ?? 0) - 1}` : "-1 (it is not mapped)";
      const removed = task.instances?.[i]?.state === "removed" ? " (that instance was removed when its upstream re-ran shorter)" : "";
      throw new BadInputError(`task '${taskId}' of run ${state.runId} has no instance with map index ${i}${removed}; its map indexes: ${range}`);
    }
  }
}

async function append(nats: Nats, event: OperatorEvent): Promise<number> {
  return (await appendEvent(nats, event)).seq;
}

export async function clearRun(nats: Nats, runId: string, taskId: string, mapIndexes: readonly number[] | null, downstream: boolean, now = Date.now): Promise<number> {
  const state = await currentRun(nats, runId);
  checkTask(state, taskId);
  if (!FINISHED_RUN_STATES.has(state.state)) {
    throw new BadInputError(`run ${runId} is ${state.state}; clear re-runs tasks of a finished run, so wait for it to end or cancel it first`);
  }
  if (mapIndexes) checkIndexes(state, taskId, mapIndexes);
  return append(nats, { type: "ClearRequested", runId, taskId, mapIndexes, downstream, at: now() });
}

export async function cancelRun(nats: Nats, runId: string, now = Date.now): Promise<number> {
  const state = await currentRun(nats, runId);
  if (FINISHED_RUN_STATES.has(state.state)) throw new BadInputError(`run ${runId} already ended (${state.state}); there is nothing to cancel`);
  return append(nats, { type: "RunCancelRequested", runId, at: now() });
}

export async function markInstance(nats: Nats, runId: string, taskId: string, mapIndex: number, mark: string, now = Date.now): Promise<number> {
  if (mark !== "success" && mark !== "failed") throw new BadInputError(`--state must be success or failed, got '${mark}'`);
  const state = await currentRun(nats, runId);
  checkTask(state, taskId);
  checkIndexes(state, taskId, [mapIndex]);
  return append(nats, { type: "InstanceMarked", runId, taskId, mapIndex, state: mark, at: now() });
}
