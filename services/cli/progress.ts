/**
 * How far a run's mapped tasks have come, for `trigger --wait` and `run`:
 * counted from the folded state when a line or bar is drawn (not on every
 * event), since a task can hold 100,000 instances.
 */
import type { RunState } from "../../libs/core/index.ts";

export type TaskProgress = {
  taskId: string;
  /** Instances the task expanded to (removed ones left out). */
  total: number;
  /** Instances finished, however they ended. */
  done: number;
  failed: number;
  /** The task has settled (every instance finished). */
  finished: boolean;
  /** When it began (its run's start if it has no time of its own yet), epoch ms. */
  startedAt: number;
};

/** One entry per mapped task that has expanded, in the DAG's order. */
export function mappedProgress(state: RunState): TaskProgress[] {
  const out: TaskProgress[] = [];
  for (const task of Object.values(state.tasks)) {
    if (!task.mapped || task.instances === null) continue;
    let failed = 0;
    for (const instance of task.instances) if (instance.state === "failed") failed++;
    const total = task.instances.length - (task.removed ?? 0);
    out.push({ taskId: task.id, total, done: total - task.open, failed, finished: task.open === 0, startedAt: task.startedAt ?? state.startedAt });
  }
  return out;
}

/** Instances per second since the task began `elapsedMs` ago, and the time left at that pace. */
export function pace(progress: TaskProgress, elapsedMs: number): { rate: number; etaMs: number | null } {
  const rate = elapsedMs > 0 ? (progress.done * 1000) / elapsedMs : 0;
  const left = progress.total - progress.done;
  return { rate, etaMs: left === 0 ? 0 : rate > 0 ? (left / rate) * 1000 : null };
}

/** A plain progress line, for logs and pipes: `add [6]: 4/6 done, 1 failed, 12.5/s, ETA 1s`. */
export function progressLine(progress: TaskProgress, rate: number, etaMs: number | null): string {
  const failed = progress.failed > 0 ? `, ${progress.failed} failed` : "";
  if (progress.finished) return `${progress.taskId} [${progress.total}]: ${progress.done}/${progress.total} done${failed}`;
  return `${progress.taskId} [${progress.total}]: ${progress.done}/${progress.total} done${failed}, ${rate.toFixed(1)}/s, ETA ${etaMs === null ? "?" : formatDuration(etaMs)}`;
}

export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}
