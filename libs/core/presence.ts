/** What a worker tells of itself every few seconds, for `mapflow workers` and the UI's Workers page. */

export type WorkerBeat = {
  /** The name it records on each result (`host:pid:queue` unless given). */
  readonly name: string;
  readonly host: string;
  readonly pid: number;
  /** The queues it pulls from. */
  readonly queues: readonly string[];
  /** Tries it runs at once at most. */
  readonly concurrency: number;
  /** Tries running now. */
  readonly running: number;
  readonly startedAt: number;
  /** When the worker wrote this beat (epoch ms, its own clock). */
  readonly at: number;
};

/** A live worker as a reader sees it: its last beat, when the server stored it, and how long ago that was. */
export type WorkerPresence = WorkerBeat & {
  readonly key: string;
  /** When the server stored the last beat (epoch ms). */
  readonly lastBeatAt: number;
  readonly ageMs: number;
};

/** Workers whose last beat is younger than `maxAgeMs` at `now`, by name; older ones are gone (their key is about to expire). */
export function liveWorkers(beats: readonly { key: string; beat: WorkerBeat; storedAt: number }[], now: number, maxAgeMs: number): WorkerPresence[] {
  return beats
    .map(({ key, beat, storedAt }) => ({ ...beat, key, lastBeatAt: storedAt, ageMs: Math.max(0, now - storedAt) }))
    .filter((w) => w.ageMs < maxAgeMs)
    .sort((a, b) => a.name.localeCompare(b.name) || a.key.localeCompare(b.key));
}
