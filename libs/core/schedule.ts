/**
 * Schedule math with Airflow's data-interval semantics (its cron timetable):
 * a schedule's fire times cut time into data intervals [start, end); the run
 * for an interval is created once its end has passed, and its logical date
 * is the interval's start. Pure: the fire times come from a cron library the
 * service wraps (`FireTimes`), and `now` is an argument.
 */

/** A schedule's fire times (epoch ms), from a cron library. */
export type FireTimes = {
  /** The first fire time strictly after `t`. */
  after(t: number): number;
  /** The last fire time strictly before `t`. */
  before(t: number): number;
};

export type DataInterval = { readonly start: number; readonly end: number };

/** Airflow's cron presets, as the 5-field expressions they stand for. Times are UTC. */
export const SCHEDULE_PRESETS: Readonly<Record<string, string>> = {
  "@hourly": "0 * * * *",
  "@daily": "0 0 * * *",
  "@weekly": "0 0 * * 0",
  "@monthly": "0 0 1 * *",
  "@quarterly": "0 0 1 */3 *",
  "@yearly": "0 0 1 1 *",
  "@annually": "0 0 1 1 *",
};

/** The cron expression a schedule stands for (a preset's, or the schedule itself). */
export function cronOf(schedule: string): string {
  return SCHEDULE_PRESETS[schedule] ?? schedule;
}

/** Airflow's default `max_active_runs`. */
export const DEFAULT_MAX_ACTIVE_RUNS = 16;

const ISO_DATE = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2})?)?$/;

/**
 * A `startDate` as epoch ms: an ISO date (`2024-06-04`) or date-time; without
 * an offset it is UTC (JavaScript alone would read a date-time as local
 * time, so the same DAG file would schedule differently on another host).
 * Undefined when it is not one.
 */
export function parseStartDate(text: string): number | undefined {
  if (!ISO_DATE.test(text)) return undefined;
  // JavaScript rolls 2024-02-30 over to March 1st: a day past its month's end is a typo, not a date.
  const [year, month, day] = text.slice(0, 10).split("-").map(Number) as [number, number, number];
  if (month < 1 || month > 12 || day < 1 || day > (Date.UTC(year, month, 1) - Date.UTC(year, month - 1, 1)) / 86_400_000) return undefined;
  const zoned = text.length > 10 && !/(Z|[+-]\d{2}:\d{2})$/.test(text) ? `${text}Z` : text;
  const ms = Date.parse(zoned);
  return Number.isNaN(ms) ? undefined : ms;
}

export type ScheduleInput = {
  /** The DAG's `startDate` (epoch ms); null for none. */
  readonly startDate: number | null;
  readonly catchup: boolean;
  /** The end of the newest scheduled run's data interval; null before the first scheduled run. */
  readonly lastEnd: number | null;
  readonly now: number;
  /** How many runs may be created now (the DAG's free `maxActiveRuns` slots). */
  readonly limit: number;
};

export type SchedulePlan = {
  /** Intervals whose runs are due now, oldest first, at most `limit`. */
  readonly due: readonly DataInterval[];
  /** The interval after them: due at its `end` (or already, if only `limit` held it back). */
  readonly next: DataInterval;
};

/**
 * The intervals to create runs for, as Airflow's scheduler picks them.
 *
 * The first interval starts at the first fire time at or after `startDate`.
 * Each next one starts where the newest scheduled run's ended (aligned to the
 * schedule, which may have changed since). With `catchup`, every interval
 * that has ended since then is due, oldest first; without it only the latest
 * one that has ended (and the ones after it, as they end). A DAG with no
 * `startDate` has nothing to catch up from: it behaves as without catchup.
 */
export function planSchedule(fire: FireTimes, input: ScheduleInput): SchedulePlan {
  const alignNext = (t: number) => fire.after(t - 1);
  const alignPrev = (t: number) => fire.before(t + 1);
  let earliest = input.startDate === null ? null : alignNext(input.startDate);
  if (!input.catchup || earliest === null) {
    // The latest interval that has ended: it ends at the last fire time at or before now.
    const latest = fire.before(alignPrev(input.now));
    earliest = earliest === null ? latest : Math.max(earliest, latest);
  }
  let start = input.lastEnd === null ? earliest : Math.max(alignPrev(input.lastEnd), earliest);
  let end = fire.after(start);
  const due: DataInterval[] = [];
  while (due.length < input.limit && end <= input.now) {
    due.push({ start, end });
    start = end;
    end = fire.after(start);
  }
  return { due, next: { start, end } };
}
