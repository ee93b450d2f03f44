/**
 * Each unfinished task's instances by state, kept up to date from the
 * instance rows a commit writes instead of recounted at every commit: a
 * live projector commits every few milliseconds, and recounting a map of
 * 100,000 each time cost it a fifth of its CPU in a wide fan-out.
 *
 * A tally holds one byte per instance (its state's code) and knows which
 * `instances` array it counted; an expansion or a clear makes a new array
 * or rewrites them all, and the next count starts again from a full pass.
 */
import type { Instance, InstanceStateName } from "../core/state.ts";

/** The order counts are listed in while a task runs: an instance's life, start to end. */
const STATES: readonly InstanceStateName[] = ["scheduled", "queued", "running", "up_for_retry", "success", "failed", "skipped", "upstream_failed", "removed"];
const CODES = new Map(STATES.map((s, code) => [s, code]));

type Tally = { readonly instances: readonly Instance[]; readonly codes: Uint8Array; readonly counts: number[] };

function codeOf(state: InstanceStateName): number {
  const code = CODES.get(state);
  if (code === undefined) throw new Error(`read model: an instance state it does not know: ${state}`);
  return code;
}

/** Instances by state in the order of first appearance (how finished tasks' counts were always written). */
export function countByState(instances: readonly Instance[] | null): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const i of instances ?? []) counts[i.state] = (counts[i.state] ?? 0) + 1;
  return counts;
}

export class StateTallies {
  /** runId → taskId → its tally. */
  private readonly runs = new Map<string, Map<string, Tally>>();

  /** The task's tally, if it counted these very instances (an expansion or a clear makes new ones). */
  private current(runId: string, taskId: string, instances: readonly Instance[]): Tally | undefined {
    const tally = this.runs.get(runId)?.get(taskId);
    return tally && tally.instances === instances && tally.codes.length === instances.length ? tally : undefined;
  }

  /** Instance `position` of the task was just written with its current state. */
  written(runId: string, taskId: string, instances: readonly Instance[], position: number): void {
    const tally = this.current(runId, taskId, instances);
    if (!tally) return; // counted afresh when next asked
    const code = codeOf(instances[position]!.state);
    const was = tally.codes[position]!;
    if (was === code) return;
    tally.counts[was]!--;
    tally.counts[code]!++;
    tally.codes[position] = code;
  }

  /** The task's counts now, in life order; the first call (or one after a rewrite) counts every instance. */
  counts(runId: string, taskId: string, instances: readonly Instance[]): Record<string, number> {
    let tally = this.current(runId, taskId, instances);
    if (!tally) {
      const counted: Tally = { instances, codes: new Uint8Array(instances.length), counts: STATES.map(() => 0) };
      instances.forEach((i, position) => {
        const code = codeOf(i.state);
        counted.codes[position] = code;
        counted.counts[code]!++;
      });
      let tasks = this.runs.get(runId);
      if (!tasks) this.runs.set(runId, (tasks = new Map()));
      tasks.set(taskId, (tally = counted));
    }
    const out: Record<string, number> = {};
    tally.counts.forEach((n, code) => {
      if (n > 0) out[STATES[code]!] = n;
    });
    return out;
  }

  /** Drops a task's tally (finished, or rewritten whole). */
  forget(runId: string, taskId: string): void {
    const tasks = this.runs.get(runId);
    tasks?.delete(taskId);
    if (tasks?.size === 0) this.runs.delete(runId);
  }

  /** Drops a run's tallies (purged). */
  forgetRun(runId: string): void {
    this.runs.delete(runId);
  }

  clear(): void {
    this.runs.clear();
  }
}
