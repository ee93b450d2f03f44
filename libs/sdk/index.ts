/**
 * The authoring SDK: `import { dag, task, shell } from "mapflow"`.
 * A DAG file's default export (or any export) made by `dag()` is a DAG.
 */
import { DagDefinitionError } from "../errors.ts";
import { isToken } from "../names/index.ts";
import { activeBuilder, DagBuilder, OPTION_NAMES, taskOptions } from "./builder.ts";
import type { Args, Dag, DagOptions, MappedArgs, Operator, Output, ShellOptions, TaskDef, TaskFn, TaskOptionsInput } from "./types.ts";

export type * from "./types.ts";

export function dag(options: DagOptions, build: () => void): Dag {
  return DagBuilder.run(options, build);
}

/** Option keys given to partial() set options (as Airflow's partial(retries=…) does); the rest are arguments. */
function splitPartial(args: Record<string, unknown>): { options: TaskOptionsInput; args: Record<string, unknown> } {
  const options: Record<string, unknown> = {};
  const rest: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(args)) (OPTION_NAMES.has(k) ? options : rest)[k] = v;
  return { options: options as TaskOptionsInput, args: rest };
}

function define<A, R>(id: string, operator: Operator, options: TaskOptionsInput): TaskDef<A, R> {
  if (typeof id !== "string" || !isToken(id)) {
    throw new DagDefinitionError(`task id ${JSON.stringify(id)} is not valid: use letters, digits, '_' and '-' only`);
  }
  taskOptions(id, options); // fail at definition, not at first use
  const definition = {};
  const add = (args: Record<string, unknown>, expand: Record<string, unknown> | null, extra: TaskOptionsInput = {}) =>
    activeBuilder(id).add({ definition, baseId: id, operator, options: { ...options, ...extra }, args, expand });

  const call = ((args: Args<A>) => add({ ...(args ?? {}) } as Record<string, unknown>, null)) as TaskDef<A, R>;
  Object.defineProperty(call, "taskId", { value: id });
  call.expand = (args: MappedArgs<A>) => add({}, { ...args } as Record<string, unknown>) as Output<R[]>;
  call.partial = (partialArgs) => {
    const split = splitPartial({ ...partialArgs } as Record<string, unknown>);
    return { expand: (args: MappedArgs<A>) => add(split.args, { ...args } as Record<string, unknown>, split.options) as Output<R[]> };
  };
  call.after = (...upstream: Output[]) => add({}, null).after(...upstream) as Output<R>;
  return call;
}

/** A task that runs `fn(args, ctx)` on a worker. */
export function task<A = Record<string, never>, R = unknown>(id: string, fn: TaskFn<A, R>, options: TaskOptionsInput = {}): TaskDef<A, R> {
  if (typeof fn !== "function") throw new DagDefinitionError(`task '${id}': the second argument must be the task's function`);
  return define<A, R>(id, { kind: "function", fn: fn as TaskFn }, options);
}

export type ShellArgs = { command: string } & Record<string, unknown>;

/**
 * A task that runs a shell command (Airflow's BashOperator). Other arguments
 * reach the command only as environment variables, never spliced into it.
 * Its result is the last line of standard output.
 */
export function shell(id: string, options: ShellOptions = {}): TaskDef<ShellArgs, string> {
  const { cwd, env, ...taskOpts } = options;
  return define<ShellArgs, string>(id, { kind: "shell", cwd, env }, taskOpts);
}
