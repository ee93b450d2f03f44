/**
 * The authoring SDK: `import { dag, task, shell, taskGroup, zip, concat } from "mapflow"`.
 * A DAG file's default export (or any export) made by `dag()` is a DAG.
 */
import { DagDefinitionError } from "../errors.ts";
import { isToken } from "../names/index.ts";
import { activeBuilder, DagBuilder, isRef, taskOptions, type MappingInput } from "./builder.ts";
import { OPTION_NAMES } from "../core/spec.ts";
import { checkShellArgs, shellOperator } from "./shell.ts";
import type {
  Args, Dag, DagOptions, KwargsList, MappedArgs, Operator, Output, Ref, ShellOptions, TaskDef, TaskFn, TaskGroupDef, TaskOptionsInput,
} from "./types.ts";

export type * from "./types.ts";
/** What a DAG file or task code may meet and check with `instanceof`. */
export { ArtifactError, DagDefinitionError, NonRetryableError, TaskKvError } from "../errors.ts";

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

const product = (args: object): MappingInput => ({ kind: "product", kwargs: { ...args } as Record<string, unknown> });
const kwargsOf = (list: unknown): MappingInput => ({ kind: "kwargs", list });

function define<A, R>(id: string, operator: Operator, options: TaskOptionsInput): TaskDef<A, R> {
  if (typeof id !== "string" || !isToken(id)) {
    throw new DagDefinitionError(`task id ${JSON.stringify(id)} is not valid: use letters, digits, '_' and '-' only`);
  }
  taskOptions(id, options); // fail at definition, not at first use
  const definition = {};
  const add = (args: Record<string, unknown>, mapping: MappingInput | null, extra: TaskOptionsInput = {}) => {
    if (operator.kind === "shell") checkShellArgs(id, operator, args, mapping);
    return activeBuilder(`task '${id}'`).add({ definition, baseId: id, operator, options: { ...options, ...extra }, args, mapping });
  };

  const call = ((args: Args<A>) => add({ ...(args ?? {}) } as Record<string, unknown>, null)) as TaskDef<A, R>;
  Object.defineProperty(call, "taskId", { value: id });
  call.expand = (args: MappedArgs<A>) => add({}, product(args)) as Output<R[]>;
  call.expandKwargs = (list: KwargsList<A>) => add({}, kwargsOf(list)) as Output<R[]>;
  call.partial = (partialArgs) => {
    const split = splitPartial({ ...partialArgs } as Record<string, unknown>);
    return {
      expand: (args: MappedArgs<A>) => add(split.args, product(args), split.options) as Output<R[]>,
      expandKwargs: (list: KwargsList<A>) => add(split.args, kwargsOf(list), split.options) as Output<R[]>,
    };
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
 * Its result is the last line of standard output. Secrets come from the
 * worker's environment by name (`secretEnv`), never from the DAG file.
 */
export function shell(id: string, options: ShellOptions = {}): TaskDef<ShellArgs, string> {
  const { cwd, env, secretEnv, inheritEnv, ...taskOpts } = options;
  return define<ShellArgs, string>(id, shellOperator(id, { cwd, env, secretEnv, inheritEnv }), taskOpts);
}

/**
 * A group of tasks whose ids get the prefix `<id>.`. `expand` maps the whole
 * sub-graph: each task inside gets one instance per group index and reads
 * the group's arguments for that index; what `build` returns (a task's
 * output) reaches tasks outside the group as the list over group indexes.
 */
export function taskGroup<A extends Record<string, unknown>, R>(id: string, build: (args: { [K in keyof A]: Ref<A[K]> }) => R): TaskGroupDef<A, R> {
  if (typeof build !== "function") throw new DagDefinitionError(`task group '${id}': the second argument must be a function that adds the group's tasks`);
  const run = (args: Record<string, unknown>, mapping: MappingInput | null): R =>
    activeBuilder(`task group '${id}'`).group(id, args, mapping, build);
  const call = ((args: A) => run({ ...(args ?? {}) }, null)) as TaskGroupDef<A, R>;
  Object.defineProperty(call, "groupId", { value: id });
  call.expand = (args) => run({}, product(args));
  call.expandKwargs = (list) => run({}, kwargsOf(list));
  call.partial = (partialArgs) => ({
    expand: (args) => run({ ...partialArgs }, product(args)),
    expandKwargs: (list) => run({ ...partialArgs }, kwargsOf(list)),
  });
  return call;
}

type ZipOptions = { fillValue: unknown };
function isZipOptions(value: unknown): value is ZipOptions {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !isRef(value) && Object.keys(value).join() === "fillValue";
}

/** What `zip` and `concat` combine: task outputs (or other refs) and literal lists; at least one. */
type Sequence = Ref<unknown> | readonly unknown[];
type Sequences = readonly [Sequence, ...Sequence[]];
/** What mapping over a value gives, item by item: a list's items, or an object's [key, value] entries. */
type ItemsOf<T> = T extends readonly (infer I)[] ? I : T extends object ? [string, T[keyof T]] : unknown;
/** The item type of a sequence: `Output<number[]>` and `number[]` both give `number`. */
type ItemOf<S> = S extends Ref<infer T> ? ItemsOf<T> : ItemsOf<S>;
type Tuples<S extends Sequences, Fill = never> = { -readonly [K in keyof S]: ItemOf<S[K]> | Fill };

/**
 * Tuples `[a[i], b[i], …]`: as long as the shortest input, or the longest
 * when a `{ fillValue }` is given last (missing places take it).
 */
export function zip<S extends Sequences>(...inputs: S): Ref<Tuples<S>[]>;
export function zip<S extends Sequences, F>(...inputs: [...S, { fillValue: F }]): Ref<Tuples<S, F>[]>;
export function zip(...inputs: unknown[]): Ref<unknown[][]> {
  const last = inputs[inputs.length - 1];
  const fill = isZipOptions(last) ? { value: last.fillValue } : undefined;
  return activeBuilder("zip()").combine("zip", fill ? inputs.slice(0, -1) : inputs, fill) as Ref<unknown[][]>;
}

/** One sequence of every item of each input, in order. */
export function concat<S extends Sequences>(...inputs: S): Ref<ItemOf<S[number]>[]> {
  return activeBuilder("concat()").combine("concat", inputs) as Ref<ItemOf<S[number]>[]>;
}
