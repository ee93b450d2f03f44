/**
 * A run's `conf` checked against the DAG's declared `params` (Airflow's
 * Params): a key the DAG does not declare, or a value of another type than
 * its default, is refused before the run starts; missing keys take their
 * defaults.
 */
import { BadInputError } from "../errors.ts";
import type { DagSpec } from "./spec.ts";

function kind(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "list";
  return typeof value;
}

export function confFor(spec: DagSpec, given: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const params = spec.params;
  if (params === null) return { ...given };
  const declared = Object.keys(params);
  for (const [key, value] of Object.entries(given)) {
    if (!(key in params)) {
      const known = declared.length ? `it declares: ${declared.join(", ")}` : "it declares none";
      throw new BadInputError(`--conf key '${key}' is not a param of DAG '${spec.id}' (${known}); remove it or declare it in dag({ params })`);
    }
    const want = kind(params[key]);
    if (want !== "null" && kind(value) !== want) {
      throw new BadInputError(`--conf key '${key}' of DAG '${spec.id}' must be a ${want} (its default is ${JSON.stringify(params[key])}), got a ${kind(value)}`);
    }
  }
  return { ...params, ...given };
}
