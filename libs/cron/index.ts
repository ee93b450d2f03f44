/**
 * Cron expressions, through the `cron-parser` library: checking a DAG's
 * schedule, and the fire times the pure schedule math (libs/core/schedule.ts)
 * takes as input. Outside the pure core because the library's entry point
 * also loads `fs` (for crontab files, which mapflow never reads).
 *
 * Schedules are Airflow's: a preset (`@daily`, …) or a 5-field cron
 * expression, always in UTC.
 */
import { CronExpressionParser, type CronExpression } from "cron-parser";
import { cronOf, SCHEDULE_PRESETS, type FireTimes } from "../core/schedule.ts";
import { DagDefinitionError } from "../errors.ts";

/** Jenkins' `H` (a hashed, so per-DAG random, value) is cron-parser's, not Airflow's: refused rather than seeded. */
const HASHED = /(^|[\s,/-])H(?=$|[\s,/(])/i;

function parse(expression: string, at = 0): CronExpression {
  return CronExpressionParser.parse(expression, { tz: "UTC", currentDate: at });
}

/**
 * Why a schedule cannot be used, or undefined when it can. `@once` and
 * `@continuous` are Airflow presets mapflow does not have (yet).
 */
export function scheduleProblem(schedule: string): string | undefined {
  if (schedule.startsWith("@")) {
    return schedule in SCHEDULE_PRESETS ? undefined : `'${schedule}' is not a preset mapflow knows; use one of ${Object.keys(SCHEDULE_PRESETS).join(", ")} or a 5-field cron expression`;
  }
  const fields = schedule.trim().split(/\s+/);
  if (fields.length !== 5) return `'${schedule}' has ${fields.length} fields; a cron schedule has 5: minute hour day-of-month month day-of-week (UTC)`;
  if (HASHED.test(schedule)) return `'${schedule}' uses H (a hashed value), which Airflow's cron does not have; name the minute or hour`;
  try {
    parse(schedule).next(); // an expression that never fires (Feb 30th) fails here
  } catch (err) {
    return `'${schedule}' is not a valid cron expression: ${(err as Error).message}`;
  }
  return undefined;
}

/** Throws a DagDefinitionError naming the DAG when its schedule cannot be used. */
export function checkSchedule(dagId: string, schedule: string | null | undefined): void {
  if (schedule === null || schedule === undefined) return;
  const problem = scheduleProblem(schedule);
  if (problem) throw new DagDefinitionError(`DAG '${dagId}': schedule ${problem}`);
}

/** The fire times of a (checked) schedule, for `planSchedule`. */
export function fireTimes(schedule: string): FireTimes {
  const expression = parse(cronOf(schedule));
  return {
    after(t) {
      expression.reset(new Date(t));
      return expression.next().getTime();
    },
    before(t) {
      expression.reset(new Date(t));
      return expression.prev().getTime();
    },
  };
}
