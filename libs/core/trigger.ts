/** Airflow's trigger rules: given the states of what a task waits for, run it, skip it, or wait. */
import type { TriggerRule } from "./spec.ts";
import type { TaskStateName } from "./state.ts";
import { TERMINAL_TASK_STATES } from "./state.ts";

export type Verdict = { kind: "run" } | { kind: "skip"; state: "skipped" | "upstream_failed" } | { kind: "wait" };

const RUN: Verdict = { kind: "run" };
const WAIT: Verdict = { kind: "wait" };
const SKIPPED: Verdict = { kind: "skip", state: "skipped" };
const UPSTREAM_FAILED: Verdict = { kind: "skip", state: "upstream_failed" };

export function triggerVerdict(rule: TriggerRule, upstream: readonly TaskStateName[]): Verdict {
  let success = 0;
  let failed = 0;
  let skipped = 0;
  let done = 0;
  for (const s of upstream) {
    if (!TERMINAL_TASK_STATES.has(s)) continue;
    done++;
    if (s === "success") success++;
    else if (s === "skipped") skipped++;
    else failed++; // failed or upstream_failed
  }
  const all = upstream.length;
  const allDone = done === all;
  switch (rule) {
    case "always":
      return RUN;
    // As in Airflow, rules that can no longer hold give up at once instead of waiting for the rest.
    case "all_success":
      if (failed > 0) return UPSTREAM_FAILED;
      if (skipped > 0) return SKIPPED;
      return allDone ? RUN : WAIT;
    case "all_failed":
      if (success + skipped > 0) return SKIPPED;
      return allDone ? RUN : WAIT;
    case "all_done":
      return allDone ? RUN : WAIT;
    case "all_skipped":
      if (!allDone) return WAIT;
      return skipped === all ? RUN : SKIPPED;
    case "one_success":
      if (success > 0) return RUN;
      if (!allDone) return WAIT;
      return failed > 0 ? UPSTREAM_FAILED : SKIPPED;
    case "one_failed":
      if (failed > 0) return RUN;
      return allDone ? SKIPPED : WAIT;
    case "one_done":
      if (success + failed > 0) return RUN;
      return allDone ? SKIPPED : WAIT;
    case "none_failed":
      if (failed > 0) return UPSTREAM_FAILED;
      return allDone ? RUN : WAIT;
    case "none_failed_min_one_success":
      if (failed > 0) return UPSTREAM_FAILED;
      if (!allDone) return WAIT;
      return success > 0 || all === 0 ? RUN : SKIPPED;
    case "none_skipped":
      if (skipped > 0) return SKIPPED;
      return allDone ? RUN : WAIT;
    default: {
      const unknown: never = rule;
      throw new Error(`unknown trigger rule ${String(unknown)}`);
    }
  }
}
