/**
 * Checks of the log itself, made while it is folded: every result belongs to
 * an instance and a try that were dispatched, no try has two results, and a
 * run ends once each time it is (re)opened. Pure: the caller folds, and
 * hands each event here with the run's state from before it.
 */
import type { RunEvent } from "../events/index.ts";
import { FINISHED_RUN_STATES, type RunState } from "./state.ts";

export type Finding = {
  readonly seq: number;
  readonly runId: string;
  readonly taskId?: string;
  readonly mapIndex?: number;
  readonly try?: number;
  readonly problem: string;
};

export class LogAudit {
  readonly findings: Finding[] = [];
  /** `run/task/index/try` of every result seen. */
  private readonly results = new Set<string>();
  /** Runs that ended and were not reopened since (by a clear). */
  private readonly ended = new Set<string>();

  /** One outcome, alone or one of an InstancesFinished's entries. */
  private result(seq: number, before: RunState | undefined, runId: string, taskId: string, outcome: { readonly mapIndex: number; readonly try: number }): void {
    const { mapIndex, try: tryNumber } = outcome;
    const found = (problem: string) => this.findings.push({ seq, runId, taskId, mapIndex, try: tryNumber, problem });
    const task = before?.tasks[taskId];
    const instance = task?.instances?.[mapIndex < 0 ? 0 : mapIndex];
    if (!before) found("a result for a run the log never requested");
    else if (!instance || instance.mapIndex !== mapIndex) found("a result for an instance that was never dispatched");
    else if (tryNumber < 1 || tryNumber > instance.try) found(`a result for try ${tryNumber}, but only tries up to ${instance.try} were dispatched`);
    const key = `${runId}/${taskId}/${mapIndex}/${tryNumber}`;
    if (this.results.has(key)) found("a second result for the same try");
    this.results.add(key);
  }

  /** Looks at `event` (at `seq`) against its run's state before it is folded. */
  check(seq: number, before: RunState | undefined, event: RunEvent): void {
    const found = (problem: string, where: Partial<Omit<Finding, "seq" | "runId" | "problem">> = {}) =>
      this.findings.push({ seq, runId: event.runId, ...where, problem });
    switch (event.type) {
      case "InstanceSucceeded":
      case "InstanceFailed":
        this.result(seq, before, event.runId, event.taskId, event);
        return;
      case "InstancesFinished":
        for (const outcome of event.outcomes) this.result(seq, before, event.runId, event.taskId, outcome);
        return;
      case "RunFinished":
        if (this.ended.has(event.runId)) found("a second terminal event with no clear between");
        this.ended.add(event.runId);
        return;
      case "ClearRequested":
        // A clear of a finished run reopens it: it will end once more.
        if (before && FINISHED_RUN_STATES.has(before.state)) this.ended.delete(event.runId);
        return;
      default:
    }
  }
}
