/**
 * Compiles a DAG definition into a `DagSpec`. Task calls inside `dag(…, build)`
 * record nodes on the builder of the `dag()` call that is running; outside
 * one they are an error. The builder lives only for that call.
 */
import { DagDefinitionError } from "../errors.ts";
import {
  DEFAULT_TASK_OPTIONS, OPTION_NAMES, TASK_OPTION_NAMES, TRIGGER_RULES,
  type DagSpec, type GroupSpec, type Mapping, type TaskOptions, type TaskSpec, type ValueSource,
} from "../core/spec.ts";
import { isToken, MAX_DAG_ID_LENGTH, MAX_ID_LENGTH } from "../names/index.ts";
import { parseStartDate } from "../core/schedule.ts";
import { kwargsConflict } from "../core/expand.ts";
import type { Dag, DagOptions, Operator, Output, Ref, TaskOptionsInput } from "./types.ts";

type Node = {
  readonly id: string;
  readonly definition: object;
  readonly operator: Operator;
  readonly args: Record<string, ValueSource>;
  readonly mapping: Mapping | null;
  readonly group: string | null;
  readonly upstream: Set<string>;
  readonly options: TaskOptions;
  readonly output: Output;
};

/** How a task or group is mapped, as the author wrote it. */
export type MappingInput = { kind: "product"; kwargs: Record<string, unknown> } | { kind: "kwargs"; list: unknown };

export type NodeInput = {
  definition: object;
  baseId: string;
  operator: Operator;
  options: TaskOptionsInput;
  args: Record<string, unknown>;
  mapping: MappingInput | null;
};

/** What the builder knows of a ref it made: the mapped group whose argument it reads, if any. */
type RefInfo = { readonly group: string | null };

let current: DagBuilder | null = null;

export function activeBuilder(what: string): DagBuilder {
  if (!current) throw new DagDefinitionError(`${what} is used outside a dag(…) definition; call it inside dag(options, () => { … })`);
  return current;
}

export function isRef(value: unknown): value is Ref {
  return typeof value === "object" && value !== null && (value as { kind?: unknown }).kind === "mapflow.ref";
}

function containsRef(value: unknown, depth = 0): boolean {
  if (isRef(value)) return true;
  if (depth > 8 || typeof value !== "object" || value === null) return false;
  return Object.values(value).some((v) => containsRef(v, depth + 1));
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !isRef(value);
}

/** Why a name is no task option, with what to use instead where Airflow users would reach for it. */
function unknownOption(name: string): string {
  if (name === "pool") return "mapflow has no pools: limit a task's instances at once with 'maxActive' (across runs) or 'maxActivePerRun'";
  if (name === "taskId" || name === "task_id") return "a task's id is the first argument of task() or shell(), not an option";
  return `unknown option '${name}'; the options are ${[...TASK_OPTION_NAMES].join(", ")}`;
}

export function taskOptions(taskId: string, input: TaskOptionsInput): Omit<TaskOptions, "mapIndexLabel"> {
  const bad = (what: string): never => {
    throw new DagDefinitionError(`task '${taskId}': ${what}`);
  };
  // A name outside the options is a mistake to report, not a setting to drop.
  for (const name of Object.keys(input)) if (!TASK_OPTION_NAMES.has(name)) bad(unknownOption(name));
  const count = (name: keyof TaskOptionsInput, min: number): void => {
    const value = input[name];
    if (value !== undefined && (typeof value !== "number" || !Number.isInteger(value) || value < min)) bad(`option '${name}' must be an integer ≥ ${min}, got ${String(value)}`);
  };
  const flag = (name: keyof TaskOptionsInput): void => {
    if (input[name] !== undefined && typeof input[name] !== "boolean") bad(`option '${name}' must be true or false, got ${String(input[name])}`);
  };
  count("retries", 0);
  count("retryDelayMs", 0);
  count("maxRetryDelayMs", 0);
  count("timeoutMs", 1);
  count("maxMapLength", 1);
  count("maxActivePerRun", 1);
  count("maxActive", 1);
  flag("retryExponentialBackoff");
  flag("partialResults");
  if (input.queue !== undefined && !isToken(input.queue)) bad(`queue '${input.queue}' may hold only letters, digits, '_' and '-'`);
  if (input.triggerRule !== undefined && !TRIGGER_RULES.includes(input.triggerRule)) {
    bad(`unknown triggerRule '${String(input.triggerRule)}'; use one of ${TRIGGER_RULES.join(", ")}`);
  }
  if (input.mapIndexLabel !== undefined && typeof input.mapIndexLabel !== "function") bad("option 'mapIndexLabel' must be a function of the instance's arguments");
  const d = DEFAULT_TASK_OPTIONS;
  return {
    retries: input.retries ?? d.retries,
    retryDelayMs: input.retryDelayMs ?? d.retryDelayMs,
    retryExponentialBackoff: input.retryExponentialBackoff ?? d.retryExponentialBackoff,
    maxRetryDelayMs: input.maxRetryDelayMs ?? d.maxRetryDelayMs,
    timeoutMs: input.timeoutMs ?? d.timeoutMs,
    queue: input.queue ?? d.queue,
    triggerRule: input.triggerRule ?? d.triggerRule,
    maxMapLength: input.maxMapLength ?? d.maxMapLength,
    maxActivePerRun: input.maxActivePerRun ?? d.maxActivePerRun,
    maxActive: input.maxActive ?? d.maxActive,
    partialResults: input.partialResults ?? d.partialResults,
  };
}

/**
 * The schedule options' types and dates. Whether a cron expression is valid
 * is checked where DAG files are loaded (libs/dags), with a cron library the
 * pure SDK does not import.
 */
function checkScheduleOptions(options: DagOptions): void {
  const bad = (what: string): never => {
    throw new DagDefinitionError(`DAG '${options.id}': ${what}`);
  };
  const { schedule, startDate, catchup, maxActiveRuns } = options;
  if (schedule !== undefined && schedule !== null && (typeof schedule !== "string" || schedule.trim() === "")) {
    bad(`schedule must be a cron expression or a preset such as "@daily" (or null for manual runs only), got ${JSON.stringify(schedule)}`);
  }
  if (startDate instanceof Date ? Number.isNaN(startDate.getTime()) : startDate !== undefined && (typeof startDate !== "string" || parseStartDate(startDate) === undefined)) {
    bad(`startDate must be a Date or an ISO date such as "2024-06-04" or "2024-06-04T06:00:00Z", got ${JSON.stringify(startDate)}`);
  }
  if (catchup !== undefined && typeof catchup !== "boolean") bad(`catchup must be true or false, got ${JSON.stringify(catchup)}`);
  if (maxActiveRuns !== undefined && (!Number.isInteger(maxActiveRuns) || maxActiveRuns < 1)) bad(`maxActiveRuns must be an integer ≥ 1, got ${String(maxActiveRuns)}`);
}

export class DagBuilder {
  private readonly nodes = new Map<string, Node>();
  private readonly groups = new Map<string, GroupSpec>();
  private readonly functions = new Map<string, (value: any) => unknown>();
  private readonly refs = new WeakMap<object, RefInfo>();
  /** Ids of the task groups being built, outermost first: they prefix task ids. */
  private readonly prefix: string[] = [];
  /** The mapped group being built, if any. */
  private mappedGroup: string | null = null;

  constructor(readonly dagId: string) {}

  /** A reference to a run-time value; `map` adds a worker-side transform. */
  ref<T>(source: ValueSource, tasks: readonly string[], info: RefInfo, extra: object = {}): Ref<T> {
    const builder = this;
    const ref = {
      kind: "mapflow.ref" as const,
      source,
      tasks,
      map(fn: (item: unknown) => unknown) {
        if (typeof fn !== "function") throw new DagDefinitionError(`.map() takes a function, got ${typeof fn}`);
        const id = `map:${builder.functions.size}`;
        builder.functions.set(id, fn);
        return builder.ref({ kind: "map", source, fn: id }, tasks, info);
      },
      ...extra,
    };
    this.refs.set(ref, info);
    return ref as unknown as Ref<T>;
  }

  /** `zip` and `concat` over refs and literal lists. */
  combine(kind: "zip" | "concat", values: readonly unknown[], fill?: { value: unknown }): Ref {
    const tasks = new Set<string>();
    let group: string | null = null;
    const sources = values.map((v, i) => {
      if (isRef(v)) {
        const info = this.infoOf(v, `${kind}() argument ${i + 1}`);
        group ??= info.group;
        for (const t of v.tasks) tasks.add(t);
        return v.source;
      }
      if (!Array.isArray(v)) throw new DagDefinitionError(`${kind}() argument ${i + 1} is ${v === null ? "null" : `a ${typeof v}`}; pass task outputs or lists`);
      if (containsRef(v)) throw new DagDefinitionError(`${kind}() argument ${i + 1} nests a task output inside a list; pass the output itself`);
      return { kind: "literal", value: v } as const;
    });
    if (sources.length === 0) throw new DagDefinitionError(`${kind}() needs at least one input`);
    const source: ValueSource = kind === "zip" ? { kind: "zip", sources, ...(fill ? { fill } : {}) } : { kind: "concat", sources };
    return this.ref(source, [...tasks], { group });
  }

  private infoOf(ref: Ref, what: string): RefInfo {
    const info = this.refs.get(ref);
    if (!info) {
      const from = "taskId" in ref ? `task '${(ref as Output).taskId}'` : "a value";
      throw new DagDefinitionError(`${what} refers to ${from}, which is not in DAG '${this.dagId}'; pass outputs of tasks defined in the same dag(…)`);
    }
    return info;
  }

  /** The spec source of an argument; a ref's tasks become upstreams. */
  private sourceOf(owner: string, name: string, value: unknown, upstream: Set<string>): ValueSource {
    if (isRef(value)) {
      const info = this.infoOf(value, `${owner}: argument '${name}'`);
      if (info.group !== null && info.group !== this.mappedGroup) {
        throw new DagDefinitionError(`${owner}: argument '${name}' reads an argument of task group '${info.group}' outside that group; pass a task output instead`);
      }
      for (const t of value.tasks) upstream.add(t);
      return value.source;
    }
    if (typeof value === "function") throw new DagDefinitionError(`${owner}: argument '${name}' is a function; pass data or a task output`);
    if (containsRef(value)) {
      throw new DagDefinitionError(`${owner}: argument '${name}' nests a task output inside a literal; pass the output as the argument itself`);
    }
    return { kind: "literal", value };
  }

  private mappingOf(owner: string, input: MappingInput, partialNames: readonly string[], upstream: Set<string>): Mapping {
    if (input.kind === "kwargs") {
      const list = input.list;
      if (!isRef(list)) {
        if (!Array.isArray(list)) throw new DagDefinitionError(`${owner}: expandKwargs() takes a list of argument objects or a task output, got ${list === null ? "null" : `a ${typeof list}`}`);
        list.forEach((item, i) => {
          if (!isPlainObject(item)) throw new DagDefinitionError(`${owner}: expandKwargs() item ${i} is not an object of arguments`);
          const conflict = kwargsConflict(item, (name) => partialNames.includes(name));
          if (conflict) throw new DagDefinitionError(`${owner}: expandKwargs() item ${i} ${conflict}`);
        });
      }
      return { kind: "kwargs", source: this.sourceOf(owner, "expandKwargs", list, upstream) };
    }
    const names = Object.keys(input.kwargs);
    if (names.length === 0) throw new DagDefinitionError(`${owner}: expand() needs at least one argument to map over`);
    for (const name of names) {
      if (OPTION_NAMES.has(name)) throw new DagDefinitionError(`${owner}: '${name}' is a task option and cannot be mapped; set it in the task's options instead`);
      if (partialNames.includes(name)) throw new DagDefinitionError(`${owner}: argument '${name}' is given to both partial() and expand()`);
      const value = input.kwargs[name];
      if (!isRef(value) && (typeof value !== "object" || value === null)) {
        throw new DagDefinitionError(`${owner}: expand() argument '${name}' is ${value === null ? "null" : `a ${typeof value}`}; mapping needs a list, an object or a task output`);
      }
    }
    return { kind: "product", kwargs: Object.fromEntries(names.map((k) => [k, this.sourceOf(owner, k, input.kwargs[k], upstream)])) };
  }

  private inGroup(id: string): string {
    return [...this.prefix, id].join(".");
  }

  /** Adds one task node and returns the reference to its output. */
  add(input: NodeInput): Output {
    const id = this.freshId(this.inGroup(input.baseId), input.definition);
    if (id.length > MAX_ID_LENGTH) throw new DagDefinitionError(`task id '${id}' is ${id.length} characters long, over ${MAX_ID_LENGTH} with its groups' prefixes; shorten it or its groups' ids`);
    const upstream = new Set<string>();
    const group = this.mappedGroup;
    if (group) for (const t of this.groups.get(group)!.upstream) upstream.add(t);
    const args = Object.fromEntries(Object.entries(input.args).map(([k, v]) => [k, this.sourceOf(`task '${id}'`, k, v, upstream)]));
    const mapping = input.mapping ? this.mappingOf(`task '${id}'`, input.mapping, Object.keys(input.args), upstream) : null;
    upstream.delete(id);
    const { mapIndexLabel } = input.options;
    const options: TaskOptions = { ...taskOptions(id, input.options), mapIndexLabel: null };
    if (mapIndexLabel) {
      this.functions.set(`label:${id}`, mapIndexLabel);
      (options as { mapIndexLabel: string | null }).mapIndexLabel = `label:${id}`;
    }
    const builder = this;
    const output = this.ref(
      { kind: "output", task: id },
      [id],
      { group: null },
      {
        taskId: id,
        mapped: mapping !== null || group !== null,
        after(...ups: Output[]) {
          builder.addAfter(id, ups);
          return output;
        },
      },
    ) as Output;
    this.nodes.set(id, { id, definition: input.definition, operator: input.operator, args, mapping, group, upstream, options, output });
    return output;
  }

  addAfter(id: string, ups: readonly unknown[]): void {
    const node = this.nodes.get(id)!;
    for (const up of ups) {
      const known = isRef(up) && "taskId" in up ? this.nodes.get((up as Output).taskId) : undefined;
      if (!known || known.output !== up) {
        throw new DagDefinitionError(`task '${id}': after() takes outputs of tasks in DAG '${this.dagId}', got ${isRef(up) ? "a value from elsewhere" : typeof up}`);
      }
      if (known.id === id) throw new DagDefinitionError(`task '${id}' cannot run after itself`);
      node.upstream.add(known.id);
    }
  }

  /**
   * Builds a task group: its tasks' ids get the group's prefix. Mapped
   * (`mapping` given), its tasks get one instance per group index and read
   * the group's arguments through refs.
   */
  group<R>(baseId: string, args: Record<string, unknown>, mapping: MappingInput | null, build: (params: any) => R): R {
    if (!isToken(baseId)) throw new DagDefinitionError(`task group id ${JSON.stringify(baseId)} is not valid: use letters, digits, '_' and '-' only`);
    const id = this.inGroup(baseId);
    if (this.groups.has(id) || this.prefix.includes(baseId) || [...this.nodes.keys()].some((t) => t === id || t.startsWith(`${id}.`))) {
      throw new DagDefinitionError(`task group id '${id}' is used twice in DAG '${this.dagId}'; give each group its own id`);
    }
    if (mapping === null) {
      this.prefix.push(baseId);
      try {
        return build(args);
      } finally {
        this.prefix.pop();
      }
    }
    if (this.mappedGroup !== null) {
      throw new DagDefinitionError(`task group '${id}' is mapped inside mapped task group '${this.mappedGroup}'; mapflow maps one group level (map tasks inside the group instead)`);
    }
    const upstream = new Set<string>();
    const groupArgs = Object.fromEntries(Object.entries(args).map(([k, v]) => [k, this.sourceOf(`task group '${id}'`, k, v, upstream)]));
    this.groups.set(id, { id, args: groupArgs, mapping: this.mappingOf(`task group '${id}'`, mapping, Object.keys(args), upstream), upstream: [...upstream] });
    const params = new Proxy({} as Record<string, unknown>, {
      get: (cache, name) => {
        if (typeof name !== "string") return undefined;
        cache[name] ??= this.ref({ kind: "group", name }, [], { group: id });
        return cache[name];
      },
    });
    const before = this.nodes.size;
    this.prefix.push(baseId);
    this.mappedGroup = id;
    try {
      const result = build(params);
      if (this.nodes.size === before) throw new DagDefinitionError(`task group '${id}' has no tasks`);
      return result;
    } finally {
      this.prefix.pop();
      this.mappedGroup = null;
    }
  }

  /** A definition called twice gets `id__1`, `id__2` (as Airflow does); two definitions sharing an id are an error. */
  private freshId(baseId: string, definition: object): string {
    const first = this.nodes.get(baseId);
    if (!first) return baseId;
    if (first.definition !== definition) {
      throw new DagDefinitionError(`task id '${baseId}' is used by two different tasks in DAG '${this.dagId}'; give each task its own id`);
    }
    let n = 1;
    while (this.nodes.has(`${baseId}__${n}`)) n++;
    return `${baseId}__${n}`;
  }

  /** Orders tasks so upstreams come first; a cycle is an error that names its tasks. */
  compile(options: DagOptions): Dag {
    const order: Node[] = [];
    const mark = new Map<string, "visiting" | "done">();
    const visit = (node: Node, path: string[]): void => {
      const seen = mark.get(node.id);
      if (seen === "done") return;
      if (seen === "visiting") {
        const cycle = [...path.slice(path.indexOf(node.id)), node.id];
        throw new DagDefinitionError(`DAG '${this.dagId}' has a cycle: ${cycle.join(" → ")}`);
      }
      mark.set(node.id, "visiting");
      for (const up of node.upstream) visit(this.nodes.get(up)!, [...path, node.id]);
      mark.set(node.id, "done");
      order.push(node);
    };
    for (const node of this.nodes.values()) visit(node, []);

    const tasks: TaskSpec[] = order.map((n) => ({
      id: n.id, operator: n.operator.kind, args: n.args, mapping: n.mapping, group: n.group, upstream: [...n.upstream], options: n.options,
    }));
    const startDate = options.startDate instanceof Date ? options.startDate.toISOString() : options.startDate;
    const spec: DagSpec = {
      id: this.dagId,
      description: options.description ?? null,
      startDate: startDate ?? null,
      catchup: options.catchup ?? false,
      ...(typeof options.schedule === "string" ? { schedule: options.schedule } : {}),
      ...(options.maxActiveRuns !== undefined ? { maxActiveRuns: options.maxActiveRuns } : {}),
      runTimeoutMs: options.runTimeoutMs ?? null,
      params: options.params ?? null,
      tasks,
      groups: [...this.groups.values()],
    };
    return { kind: "mapflow.dag", spec, operators: new Map(order.map((n) => [n.id, n.operator])), functions: new Map(this.functions) };
  }

  static run(options: DagOptions, build: () => void): Dag {
    if (typeof options?.id !== "string" || !isToken(options.id) || options.id.length > MAX_DAG_ID_LENGTH) {
      throw new DagDefinitionError(`DAG id ${JSON.stringify(options?.id)} is not valid: use up to ${MAX_DAG_ID_LENGTH} letters, digits, '_' and '-'`);
    }
    if (options.runTimeoutMs !== undefined && (!Number.isInteger(options.runTimeoutMs) || options.runTimeoutMs < 1)) {
      throw new DagDefinitionError(`DAG '${options.id}': runTimeoutMs must be an integer ≥ 1, got ${String(options.runTimeoutMs)}`);
    }
    checkScheduleOptions(options);
    if (options.params !== undefined && !isPlainObject(options.params)) {
      throw new DagDefinitionError(`DAG '${options.id}': params must be an object of conf keys and their defaults`);
    }
    if (current) throw new DagDefinitionError(`dag('${options.id}') is defined inside dag('${current.dagId}'); define DAGs at the top level of a file`);
    const builder = new DagBuilder(options.id);
    current = builder;
    try {
      build();
    } finally {
      current = null;
    }
    if (builder.nodes.size === 0) throw new DagDefinitionError(`DAG '${options.id}' has no tasks`);
    return builder.compile(options);
  }
}
