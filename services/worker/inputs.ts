/**
 * Turns a work item into the arguments its task receives: items of
 * `out.map(fn)` go through their transforms here, on the worker, because
 * the coordinator never runs user code.
 */
import { Deferred, kwargsConflict } from "../../libs/core/expand.ts";
import { holdsStored, StoredValue } from "../../libs/core/stored.ts";
import type { WorkItem } from "../../libs/core/work.ts";
import type { Dag } from "../../libs/sdk/types.ts";
import { NonRetryableError } from "../../libs/errors.ts";

type Functions = Dag["functions"];
/** Fetches a value the work carries by reference. */
export type Fetch = (ref: StoredValue) => Promise<unknown>;

function fnOf(functions: Functions, id: string): (value: unknown) => unknown {
  const fn = functions.get(id);
  if (!fn) throw new Error(`this worker's copy of the DAG has no transform '${id}'; run workers with the same DAG files as the run`);
  return fn;
}

/** Fetches every stored value and resolves every Deferred in a value, innermost first. */
export async function materialize(value: unknown, functions: Functions, fetch: Fetch): Promise<unknown> {
  if (value instanceof StoredValue) return fetch(value);
  if (value instanceof Deferred) return fnOf(functions, value.fn)(await materialize(value.input, functions, fetch));
  if (Array.isArray(value)) {
    const out = new Array<unknown>(value.length);
    for (let i = 0; i < value.length; i++) out[i] = await materialize(value[i], functions, fetch);
    return out;
  }
  if (typeof value === "object" && value !== null && Object.getPrototypeOf(value) === Object.prototype) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = await materialize(v, functions, fetch);
    return out;
  }
  return value;
}

export async function taskArgs(item: WorkItem, functions: Functions, fetch: Fetch): Promise<Record<string, unknown>> {
  if (!item.transforms && !item.spread && !holdsStored(item.args)) return { ...item.args };
  const args = (await materialize(item.args, functions, fetch)) as Record<string, unknown>;
  if (!item.spread) return args;
  const kwargs = await materialize(item.spread, functions, fetch);
  if (typeof kwargs !== "object" || kwargs === null || Array.isArray(kwargs)) {
    // Inputs the scheduler would have refused at expansion in Airflow: another try gets the same ones.
    throw new NonRetryableError(`task '${item.taskId}' maps with expandKwargs, but its transform gave ${Array.isArray(kwargs) ? "a list" : kwargs === null ? "null" : `a ${typeof kwargs}`} for map index ${item.mapIndex}; it must return an object of arguments`);
  }
  const conflict = kwargsConflict(kwargs, (name) => Object.hasOwn(args, name));
  if (conflict) throw new NonRetryableError(`task '${item.taskId}' maps with expandKwargs, but its object for map index ${item.mapIndex} ${conflict}`);
  return { ...args, ...kwargs };
}

/** The instance's `mapIndexLabel`, or undefined; a label that throws is reported, not fatal. */
export function renderLabel(labelId: string | null, args: Record<string, unknown>, functions: Functions): string | undefined {
  if (labelId === null) return undefined;
  try {
    return String(fnOf(functions, labelId)(args));
  } catch (err) {
    return `(mapIndexLabel failed: ${(err as Error).message})`;
  }
}
