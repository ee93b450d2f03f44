/** The run object printed by `mapflow run --json` and `trigger --wait --json` (DESIGN.md §4). */
import type { RunState } from "./state.ts";

export type InstanceReport = {
  mapIndex: number;
  state: string;
  tries: number;
  /** The rendered `mapIndexLabel`, when the task has one. */
  label?: string;
  result: unknown;
  startedAt: number | null;
  endedAt: number | null;
  /** The worker that ran the last try. */
  worker?: string;
  error?: string;
};

export type TaskReport = { state: string; mapped: boolean; instances: InstanceReport[]; error?: string };

export type RunReport = {
  runId: string;
  dagId: string;
  state: string;
  startedAt: number;
  endedAt: number | null;
  tasks: Record<string, TaskReport>;
};

export function runReport(state: RunState): RunReport {
  const tasks: Record<string, TaskReport> = {};
  for (const spec of state.spec.tasks) {
    const task = state.tasks[spec.id]!;
    const report: TaskReport = {
      state: task.state,
      mapped: task.mapped,
      instances: (task.instances ?? []).map((i) => ({
        mapIndex: i.mapIndex,
        state: i.state,
        tries: i.try,
        ...(i.label !== undefined ? { label: i.label } : {}),
        result: i.result ?? null,
        startedAt: i.startedAt ?? null,
        endedAt: i.endedAt ?? null,
        ...(i.worker ? { worker: i.worker } : {}),
        ...(i.error ? { error: i.error.message } : {}),
      })),
    };
    if (task.error) report.error = task.error.message;
    tasks[spec.id] = report;
  }
  return {
    runId: state.runId, dagId: state.dagId, state: state.state,
    startedAt: state.startedAt, endedAt: state.endedAt ?? null, tasks,
  };
}
