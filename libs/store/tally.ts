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
  private readonly tallies = new Map<string, Tally>();

  /** Instance `position` of the task `key` was just written with its current state. */
  written(key: string, instances: readonly Instance[], position: number): void {
    const tally = this.tallies.get(key);
    if (!tally || tally.instances !== instances || tally.codes.length !== instances.length) return; // counted afresh when next asked
    const code = codeOf(instances[position]!.state);
    const was = tally.codes[position]!;
    if (was === code) return;
    tally.counts[was]!--;
    tally.counts[code]!++;
    tally.codes[position] = code;
  }

  /** The task's counts now, in life order; the first call (or one after a rewrite) counts every instance. */
  counts(key: string, instances: readonly Instance[]): Record<string, number> {
    let tally = this.tallies.get(key);
    if (!tally || tally.instances !== instances || tally.codes.length !== instances.length) {
      tally = { instances, codes: new Uint8Array(instances.length), counts: STATES.map(() => 0) };
      instances.forEach((i, position) => {
        const code = codeOf(i.state);
        tally!.codes[position] = code;
        tally!.counts[code]!++;
      });
      this.tallies.set(key, tally);
    }
    const out: Record<string, number> = {};
    tally.counts.forEach((n, code) => {
      if (n > 0) out[STATES[code]!] = n;
    });
    return out;
  }

  /** Drops a task's tally (finished, rewritten, or purged with its run). */
  forget(key: string): void {
    this.tallies.delete(key);
  }

  clear(): void {
    this.tallies.clear();
  }

  forgetRun(runId: string): void {
    const prefix = `${runId}\0`;
    for (const key of this.tallies.keys()) if (key.startsWith(prefix)) this.tallies.delete(key);
  }
}
