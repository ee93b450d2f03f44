// Schedules: which data intervals get runs, as Airflow's cron timetable picks them; given a schedule, start, last run and now.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { parseStartDate, planSchedule, type ScheduleInput } from "../libs/core/schedule.ts";
import { checkSchedule, fireTimes, scheduleProblem } from "../libs/cron/index.ts";
import { runIds } from "../libs/names/index.ts";
import { dag, task } from "../libs/sdk/index.ts";
import { loadDags } from "../libs/dags/index.ts";
import { DagDefinitionError } from "../libs/errors.ts";
import { FIXTURES } from "./helpers/index.ts";
import { newestScheduledRuns } from "../services/audit/clean.ts";

const at = (iso: string) => Date.parse(iso);
const iso = (ms: number) => new Date(ms).toISOString();

/** The plan for a schedule, with times as ISO strings so a failure reads as dates. */
function plan(schedule: string, input: { startDate: string | null; catchup: boolean; lastEnd?: string; now: string; limit?: number }) {
  const given: ScheduleInput = {
    startDate: input.startDate === null ? null : parseStartDate(input.startDate)!,
    catchup: input.catchup,
    lastEnd: input.lastEnd === undefined ? null : at(input.lastEnd),
    now: at(input.now),
    limit: input.limit ?? 16,
  };
  const { due, next } = planSchedule(fireTimes(schedule), given);
  return { due: due.map((i) => [iso(i.start), iso(i.end)]), next: [iso(next.start), iso(next.end)] };
}

const DAY = (d: number) => `2024-01-${String(d).padStart(2, "0")}T00:00:00.000Z`;

test("@daily with catchup: every day since startDate that has ended gets a run, oldest first; today waits for midnight", () => {
  const p = plan("@daily", { startDate: "2024-01-01", catchup: true, now: "2024-01-04T00:30:00Z" });
  assert.deepEqual(p.due, [[DAY(1), DAY(2)], [DAY(2), DAY(3)], [DAY(3), DAY(4)]]);
  assert.deepEqual(p.next, [DAY(4), DAY(5)], "the next interval is due at its end, 2024-01-05");
});

test("@daily without catchup: only the latest interval that has ended", () => {
  assert.deepEqual(plan("@daily", { startDate: "2024-01-01", catchup: false, now: "2024-01-04T00:30:00Z" }).due, [[DAY(3), DAY(4)]]);
  // A coordinator that was down for days still makes only the latest, after the last scheduled run.
  assert.deepEqual(plan("@daily", { startDate: "2024-01-01", catchup: false, lastEnd: DAY(2), now: "2024-01-06T12:00:00Z" }).due, [[DAY(5), DAY(6)]]);
  // No startDate: nothing to catch up from, whatever catchup says.
  assert.deepEqual(plan("@daily", { startDate: null, catchup: true, now: "2024-01-04T00:30:00Z" }).due, [[DAY(3), DAY(4)]]);
});

test("runs continue from the last scheduled run's interval; nothing is due twice", () => {
  assert.deepEqual(plan("@daily", { startDate: "2024-01-01", catchup: true, lastEnd: DAY(3), now: "2024-01-04T00:30:00Z" }).due, [[DAY(3), DAY(4)]]);
  const none = plan("@daily", { startDate: "2024-01-01", catchup: true, lastEnd: DAY(4), now: "2024-01-04T00:30:00Z" });
  assert.deepEqual(none.due, []);
  assert.deepEqual(none.next, [DAY(4), DAY(5)]);
});

test("an interval is due the moment it ends, not before", () => {
  assert.deepEqual(plan("@daily", { startDate: "2024-01-01", catchup: true, now: "2024-01-01T23:59:59.999Z" }).due, []);
  assert.deepEqual(plan("@daily", { startDate: "2024-01-01", catchup: true, now: "2024-01-02T00:00:00Z" }).due, [[DAY(1), DAY(2)]]);
});

test("maxActiveRuns' free slots limit how many are made now; the rest stay due, in order", () => {
  const p = plan("@daily", { startDate: "2024-01-01", catchup: true, now: "2024-01-04T00:30:00Z", limit: 2 });
  assert.deepEqual(p.due, [[DAY(1), DAY(2)], [DAY(2), DAY(3)]]);
  assert.deepEqual(p.next, [DAY(3), DAY(4)], "already due: it waits only for a slot");
  assert.deepEqual(plan("@daily", { startDate: "2024-01-01", catchup: true, now: "2024-01-04T00:30:00Z", limit: 0 }).due, []);
});

test("a 5-field cron: intervals run between its fire times; a startDate between them starts at the next one", () => {
  // 30 minutes past 00, 06, 12 and 18 o'clock.
  const p = plan("30 */6 * * *", { startDate: "2024-01-01T07:00", catchup: true, now: "2024-01-02T01:00:00Z" });
  assert.deepEqual(p.due, [
    ["2024-01-01T12:30:00.000Z", "2024-01-01T18:30:00.000Z"],
    ["2024-01-01T18:30:00.000Z", "2024-01-02T00:30:00.000Z"],
  ]);
  assert.deepEqual(p.next, ["2024-01-02T00:30:00.000Z", "2024-01-02T06:30:00.000Z"]);
});

test("@hourly, @weekly and @monthly fire where Airflow's do (UTC; weeks start on Sunday)", () => {
  assert.deepEqual(plan("@hourly", { startDate: "2024-01-01T10:15:00Z", catchup: true, now: "2024-01-01T12:00:00Z" }).due, [
    ["2024-01-01T11:00:00.000Z", "2024-01-01T12:00:00.000Z"],
  ]);
  assert.deepEqual(plan("@weekly", { startDate: "2024-01-01", catchup: true, now: "2024-01-20T00:00:00Z" }).due, [
    ["2024-01-07T00:00:00.000Z", "2024-01-14T00:00:00.000Z"],
  ]);
  assert.deepEqual(plan("@monthly", { startDate: "2024-01-01", catchup: false, now: "2024-03-15T00:00:00Z" }).due, [
    ["2024-02-01T00:00:00.000Z", "2024-03-01T00:00:00.000Z"],
  ]);
});

test("a startDate in the future: nothing is due until its first interval ends", () => {
  const p = plan("@daily", { startDate: "2030-01-01", catchup: true, now: "2024-01-04T00:30:00Z" });
  assert.deepEqual(p.due, []);
  assert.deepEqual(p.next, ["2030-01-01T00:00:00.000Z", "2030-01-02T00:00:00.000Z"]);
});

test("a changed schedule continues from the last run's end, aligned back to the new schedule (as Airflow does)", () => {
  const p = plan("0 6 * * *", { startDate: "2024-01-01", catchup: true, lastEnd: DAY(3), now: "2024-01-03T07:00:00Z" });
  assert.deepEqual(p.due, [["2024-01-02T06:00:00.000Z", "2024-01-03T06:00:00.000Z"]]);
});

test("startDate: ISO dates and date-times, UTC unless they carry an offset; anything else is refused", () => {
  assert.equal(parseStartDate("2024-06-04"), at("2024-06-04T00:00:00Z"));
  assert.equal(parseStartDate("2024-06-04T10:00"), at("2024-06-04T10:00:00Z"), "no offset: UTC, not the host's zone");
  assert.equal(parseStartDate("2024-06-04T10:00:00+02:00"), at("2024-06-04T08:00:00Z"));
  for (const bad of ["2024-02-30", "2024-13-01", "June 4 2024", "2024-6-4", ""]) assert.equal(parseStartDate(bad), undefined, bad);
});

test("schedules: presets and 5-field crons pass; others say what is wrong", () => {
  for (const ok of ["@daily", "@hourly", "@weekly", "@monthly", "@quarterly", "@yearly", "@annually", "0 * * * *", "*/15 9-17 * * MON-FRI", "0 9 * * THU"]) {
    assert.equal(scheduleProblem(ok), undefined, ok);
  }
  assert.match(scheduleProblem("@once")!, /'@once' is not a preset mapflow knows; use one of @hourly/);
  assert.match(scheduleProblem("* * *")!, /has 3 fields; a cron schedule has 5/);
  assert.match(scheduleProblem("0 0 * * * *")!, /has 6 fields/);
  assert.match(scheduleProblem("61 * * * *")!, /not a valid cron expression: .*61/);
  assert.match(scheduleProblem("H * * * *")!, /uses H/);
  assert.throws(() => checkSchedule("d", "0 0 31 2 *"), (err: unknown) => err instanceof DagDefinitionError && /DAG 'd': schedule '0 0 31 2 \*' is not a valid cron/.test(err.message));
});

test("dag() keeps schedule options in the spec and refuses bad ones; an unscheduled DAG's spec has no schedule key", () => {
  const noop = () => task("t", () => 1)({});
  const scheduled = dag({ id: "s", schedule: "@daily", startDate: new Date("2024-01-01T00:00:00Z"), catchup: true, maxActiveRuns: 2 }, noop);
  assert.equal(scheduled.spec.schedule, "@daily");
  assert.equal(scheduled.spec.startDate, "2024-01-01T00:00:00.000Z");
  assert.equal(scheduled.spec.maxActiveRuns, 2);
  const manual = dag({ id: "m", schedule: null }, noop);
  assert.ok(!("schedule" in manual.spec) && !("maxActiveRuns" in manual.spec), "the spec (and so the version) of a DAG without a schedule is as before");
  const refused = (options: Record<string, unknown>, message: RegExp) =>
    assert.throws(() => dag({ id: "x", ...options }, noop), (err: unknown) => err instanceof DagDefinitionError && message.test(err.message));
  refused({ startDate: "yesterday" }, /DAG 'x': startDate must be a Date or an ISO date/);
  refused({ maxActiveRuns: 0 }, /maxActiveRuns must be an integer ≥ 1, got 0/);
  refused({ schedule: 5 }, /schedule must be a cron expression or a preset/);
  refused({ catchup: "yes" }, /catchup must be true or false/);
});

test("a DAG file with a bad cron fails to load, naming the file and the schedule", async () => {
  const bag = await loadDags(join(FIXTURES, "broken_dags"));
  const error = bag.errors.find((e) => e.file.endsWith("bad_schedule.ts"));
  assert.match(error?.message ?? "", /DAG 'bad_schedule': schedule '0 25 \* \* \*' is not a valid cron expression/);
  assert.ok(!bag.dags.has("bad_schedule"));
});

test("a scheduled run's id names its DAG and logical date, and reads back", () => {
  const id = runIds.scheduled("daily_report", "2024-01-02T00:00:00.000Z");
  assert.equal(id, "daily_report__scheduled__20240102T000000Z");
  assert.deepEqual(runIds.parseScheduled(id), { dagId: "daily_report", stamp: "20240102T000000Z" });
  assert.equal(runIds.parseScheduled("01J9Z8Q4M3N5P7R2S6T8V0W1X3"), undefined);
});

test("db clean keeps each DAG's newest scheduled run, where its schedule continues from", () => {
  const kept = newestScheduledRuns([
    "daily__scheduled__20240101T000000Z", "daily__scheduled__20240103T000000Z", "daily__scheduled__20240102T000000Z",
    "other__scheduled__20231231T000000Z", "01J9Z8Q4M3N5P7R2S6T8V0W1X3",
  ]);
  assert.deepEqual([...kept].sort(), ["daily__scheduled__20240103T000000Z", "other__scheduled__20231231T000000Z"]);
});
