/**
 * Scheduled runs: the leading coordinator requests a run for each data
 * interval of a DAG's schedule once the interval has ended (Airflow's
 * scheduler and cron timetable). Which intervals is the pure
 * `planSchedule`; this shell feeds it the clock and the cron library's fire
 * times, and appends the requests.
 *
 * Where the state lives: one number per DAG, the end of the data interval
 * of its newest scheduled run (Airflow's "last automated data interval").
 * It is a fold of the RunRequested events the coordinator reads anyway, kept
 * in the coordinator's snapshot beside the log position it was folded to, so
 * a restart or a standby taking the lease carries on from there; with no
 * snapshot the coordinator folds the whole log and finds it again. Pauses
 * and schedules come from the DAG subjects (dags.ts). Nothing else is kept.
 *
 * Why a run is never requested twice: its id is made from its DAG and
 * logical date, and its request is appended with the fence "this run's
 * request subject is still empty" (and the run's message id), so whichever
 * coordinator asks first gets it in and any other is refused and moves on.
 * Only the lease holder schedules at all; a stale one is refused the same way.
 */
import { JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";
import { confFor, DEFAULT_MAX_ACTIVE_RUNS, parseStartDate, planSchedule, type DataInterval, type FireTimes } from "../../libs/core/index.ts";
import { fireTimes } from "../../libs/cron/index.ts";
import type { DagRegistered, RunRequested } from "../../libs/events/index.ts";
import { msgIds, runIds } from "../../libs/names/index.ts";
import { appendEvent, type Nats } from "../../libs/nats/index.ts";
import type { Logger } from "../../libs/log/index.ts";
import { followDags } from "./dags.ts";

export type SchedulerOptions = {
  nats: Nats;
  log: Logger;
  now: () => number;
  /** Each DAG's newest scheduled interval end, from the coordinator's snapshot. */
  cursors: Readonly<Record<string, number>>;
  /** Unfinished runs of a DAG that the coordinator holds (they count toward maxActiveRuns). */
  activeRuns(dagId: string): number;
  /**
   * false: request nothing, only keep the positions (for the snapshot), so a
   * coordinator that does not schedule never leaves a snapshot without them.
   */
  enabled: boolean;
};

export type Scheduler = {
  /** Folds a run request read from the log: a scheduled one moves its DAG's position. */
  observe(event: RunRequested): void;
  /** Each DAG's position, for the coordinator's snapshot. */
  cursors(): Record<string, number>;
  /** Requests the runs that are due. Call it once the coordinator has caught up with the log, one call at a time. */
  tick(): Promise<void>;
  stop(): Promise<void>;
};

/** Runs one DAG may request in one tick: a long catchup goes on next tick rather than holding the coordinator's decisions. */
const PER_TICK = 32;

export async function startScheduler(options: SchedulerOptions): Promise<Scheduler> {
  const { nats, log, now } = options;
  const cursor = new Map(Object.entries(options.cursors));
  /** Runs this scheduler requested that the log has not shown back yet: they hold slots meanwhile. */
  const inFlight = new Map<string, string>();
  /** When each DAG next has an interval due; absent: look now (something changed, or a slot may free). */
  const wakeAt = new Map<string, number>();
  /** Fire times per schedule (a parsed cron expression each). */
  const fires = new Map<string, FireTimes | null>();
  const dags = options.enabled ? await followDags(nats, log, (dagId) => wakeAt.delete(dagId)) : undefined;

  function firesOf(dagId: string, schedule: string): FireTimes | null {
    if (!fires.has(schedule)) {
      try {
        fires.set(schedule, fireTimes(schedule));
      } catch (err) {
        // Checked when DAG files load; a registration that got past that is skipped, once said.
        log.error({ dagId, schedule, err }, "the DAG's schedule cannot be read; it gets no scheduled runs");
        fires.set(schedule, null);
      }
    }
    return fires.get(schedule)!;
  }

  /** Appends one interval's run; false when the append failed (the interval is tried again next tick). */
  async function request(registration: DagRegistered, interval: DataInterval, at: number): Promise<boolean> {
    const { dagId, spec } = registration;
    const runId = runIds.scheduled(dagId, new Date(interval.start).toISOString());
    const event: RunRequested = {
      type: "RunRequested", runId, dagId, dagVersion: registration.version, spec, conf: confFor(spec, {}), at,
      runType: "scheduled", logicalDate: interval.start, dataIntervalStart: interval.start, dataIntervalEnd: interval.end,
    };
    try {
      const ack = await appendEvent(nats, event, { msgId: msgIds.run(runId), expectLastSubjectSeq: 0 });
      if (!ack.duplicate) inFlight.set(runId, dagId);
      log.info({ runId, dagId, dataIntervalStart: interval.start, dataIntervalEnd: interval.end }, "requested a scheduled run");
    } catch (err) {
      if (!(err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamWrongLastSequence)) {
        log.error({ runId, dagId, err }, "could not request a scheduled run; trying again shortly");
        return false;
      }
      // Its request subject is not empty: another coordinator (or an earlier life of this one) requested it.
      log.info({ runId, dagId }, "the scheduled run was already requested");
    }
    cursor.set(dagId, Math.max(cursor.get(dagId) ?? 0, interval.end));
    return true;
  }

  async function scheduleDag(dagId: string, registration: DagRegistered, at: number): Promise<void> {
    const { spec } = registration;
    const fire = spec.schedule === undefined ? null : firesOf(dagId, spec.schedule);
    if (!fire) return;
    let held = 0;
    for (const owner of inFlight.values()) if (owner === dagId) held++;
    const free = (spec.maxActiveRuns ?? DEFAULT_MAX_ACTIVE_RUNS) - options.activeRuns(dagId) - held;
    const startDate = spec.startDate === null ? null : (parseStartDate(spec.startDate) ?? null);
    const plan = planSchedule(fire, { startDate, catchup: spec.catchup, lastEnd: cursor.get(dagId) ?? null, now: at, limit: Math.max(0, Math.min(free, PER_TICK)) });
    for (const interval of plan.due) if (!(await request(registration, interval, at))) return;
    // Nothing more is due before the next interval ends; one already ended waits for a slot, looked at every tick.
    if (plan.next.end > at) wakeAt.set(dagId, plan.next.end);
  }

  return {
    observe(event) {
      inFlight.delete(event.runId);
      if (event.runType !== "scheduled" || event.dataIntervalEnd === undefined) return;
      cursor.set(event.dagId, Math.max(cursor.get(event.dagId) ?? 0, event.dataIntervalEnd));
      wakeAt.delete(event.dagId);
    },
    cursors: () => Object.fromEntries(cursor),
    async tick() {
      if (!dags?.ready()) return;
      const at = now();
      for (const [dagId, { registration, paused }] of dags.entries()) {
        // A paused DAG keeps its position: unpaused, it catches up from there (or only the latest, without catchup).
        if (paused || registration?.spec.schedule === undefined || (wakeAt.get(dagId) ?? 0) > at) continue;
        await scheduleDag(dagId, registration, at);
      }
    },
    stop: async () => dags?.stop(),
  };
}
