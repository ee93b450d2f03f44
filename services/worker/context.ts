/**
 * The context one try of a task runs with. Its logger and its AbortSignal
 * are made on first use: most tasks of a wide map touch neither, and
 * making both for each of 100,000 trivial instances cost more than the
 * tasks themselves. Aborting works either way: `aborted` rejects, and the
 * signal, made before or after, is aborted too. The logger's lines are
 * also stored for the try (see logs.ts). Artifacts and the task KV are made
 * on first use too (artifacts.ts, kv.ts).
 */
import type { WorkItem } from "../../libs/core/work.ts";
import type { TaskContext, TaskKv } from "../../libs/sdk/types.ts";
import type { TryLog, TryLogs } from "./logs.ts";
import type { TryArtifacts, TryArtifactsFactory } from "./artifacts.ts";
import type { TaskKvFactory } from "./kv.ts";

/** What a worker lends every try: made per try only when the task first uses it. */
export type TryTools = { readonly artifacts: TryArtifactsFactory; readonly kv: TaskKvFactory };

export type TryContext = {
  readonly ctx: TaskContext;
  /** Rejects with the reason once the try is aborted (its run stopped, its timeout passed). */
  readonly aborted: Promise<never>;
  abort(reason: Error): void;
  /** The try's logger and its stored lines, set when the task first touches `ctx.log`. */
  log: TryLog | undefined;
  /** The try's artifacts, set when the task first calls `ctx.artifact`. */
  artifacts: TryArtifacts | undefined;
};

/** A date of the run as a fresh Date, so one task cannot change what another reads. */
function runDate(item: WorkItem, field: "logicalDate" | "dataIntervalStart" | "dataIntervalEnd"): Date {
  const at = item[field];
  if (at === undefined) throw new Error(`ctx.${field} is unknown: this work was published by a coordinator older than schedules; restart the coordinator and clear the task`);
  return new Date(at);
}

export function tryContext(item: WorkItem, logs: TryLogs, tools: TryTools): TryContext {
  let controller: AbortController | undefined;
  let kv: TaskKv | undefined;
  let reason: Error | undefined;
  let reject!: (reason: Error) => void;
  const aborted = new Promise<never>((_, r) => (reject = r));
  aborted.catch(() => {}); // raced, not always awaited
  const ctx: TaskContext = {
    get log() {
      return (attempt.log ??= logs(item)).log;
    },
    get signal() {
      if (!controller) {
        controller = new AbortController();
        if (reason) controller.abort(reason);
      }
      return controller.signal;
    },
    // Getters, like log and signal: a wide map of tasks that never read them makes no Dates.
    get logicalDate() {
      return runDate(item, "logicalDate");
    },
    get dataIntervalStart() {
      return runDate(item, "dataIntervalStart");
    },
    get dataIntervalEnd() {
      return runDate(item, "dataIntervalEnd");
    },
    get kv() {
      return (kv ??= tools.kv(item));
    },
    artifact(name, data, contentType) {
      return (attempt.artifacts ??= tools.artifacts(item)).write(name, data, contentType);
    },
    dagId: item.dagId, runId: item.runId, taskId: item.taskId, mapIndex: item.mapIndex, tryNumber: item.try,
    conf: item.conf,
    ...(item.upstreamStates ? { upstreamStates: item.upstreamStates } : {}),
  };
  // A field rather than a method, so a try that never logs makes nothing more.
  const attempt: TryContext = {
    ctx,
    aborted,
    abort(why) {
      if (reason) return;
      reason = why;
      controller?.abort(why);
      reject(why);
    },
    log: undefined,
    artifacts: undefined,
  };
  return attempt;
}
