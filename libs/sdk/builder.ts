/**
 * Compiles a DAG definition into a `DagSpec`. Task calls inside `dag(…, build)`
 * record nodes on the builder of the `dag()` call that is running; outside
 * one they are an error. The builder lives only for that call.
 */
import { DagDefinitionError } from "../errors.ts";
import { DEFAULT_TASK_OPTIONS, TRIGGER_RULES, type DagSpec, type TaskOptions, type TaskSpec, type ValueSource } from "../core/spec.ts";
import { isToken } from "../names/index.ts";
import type { Dag, DagOptions, Operator, Output, TaskOptionsInput } from "./types.ts";

/** Names that configure a task and so can never be mapped (Airflow forbids mapping task_id, queue, pool, retries…). */
export const OPTION_NAMES: ReadonlySet<string> = new Set([
  "taskId", "task_id", "queue", "pool", "retries", "retryDelayMs", "timeoutMs", "triggerRule",
  "maxActivePerRun", "maxActive", "maxMapLength", "mapIndexLabel",
]);

type Node = {
  readonly id: string;
  readonly definition: object;
  readonly operator: Operator;
  readonly args: Record<string, ValueSource>;
  readonly expand: Record<string, ValueSource> | null;
  readonly upstream: Set<string>;
  readonly options: TaskOptions;
  readonly output: Output;
};

export type NodeInput = {
  definition: object;
  baseId: string;
  operator: Operator;
  options: TaskOptionsInput;
  args: Record<string, unknown>;
  expand: Record<string, unknown> | null;
};

let current: DagBuilder | null = null;

export function activeBuilder(taskId: string): DagBuilder {
  if (!current) throw new DagDefinitionError(`task '${taskId}' is used outside a dag(…) definition; call it inside dag(options, () => { … })`);
  return current;
}

export function isOutput(value: unknown): value is Output {
  return typeof value === "object" && value !== null && (value as { kind?: unknown }).kind === "mapflow.output";
}

function containsOutput(value: unknown, depth = 0): boolean {
  if (isOutput(value)) return true;
  if (depth > 8 || typeof value !== "object" || value === null) return false;
  return Object.values(value).some((v) => containsOutput(v, depth + 1));
}

export function taskOptions(taskId: string, input: TaskOptionsInput): TaskOptions {
  const bad = (what: string): never => {
    throw new DagDefinitionError(`task '${taskId}': ${what}`);
  };
  const count = (name: string, value: number | undefined, min: number): void => {
    if (value !== undefined && (!Number.isInteger(value) || value < min)) bad(`option '${name}' must be an integer ≥ ${min}, got ${String(value)}`);
  };
  count("retries", input.retries, 0);
  count("retryDelayMs", input.retryDelayMs, 0);
  count("timeoutMs", input.timeoutMs, 1);
  count("maxMapLength", input.maxMapLength, 1);
  if (input.queue !== undefined && !isToken(input.queue)) bad(`queue '${input.queue}' may hold only letters, digits, '_' and '-'`);
  if (input.triggerRule !== undefined && !TRIGGER_RULES.includes(input.triggerRule)) {
    bad(`unknown triggerRule '${String(input.triggerRule)}'; use one of ${TRIGGER_RULES.join(", ")}`);
  }
  return {
    retries: input.retries ?? DEFAULT_TASK_OPTIONS.retries,
    retryDelayMs: input.retryDelayMs ?? DEFAULT_TASK_OPTIONS.retryDelayMs,
    timeoutMs: input.timeoutMs ?? DEFAULT_TASK_OPTIONS.timeoutMs,
    queue: input.queue ?? DEFAULT_TASK_OPTIONS.queue,
    triggerRule: input.triggerRule ?? DEFAULT_TASK_OPTIONS.triggerRule,
    maxMapLength: input.maxMapLength ?? DEFAULT_TASK_OPTIONS.maxMapLength,
  };
}

export class DagBuilder {
  private readonly nodes = new Map<string, Node>();

  constructor(readonly dagId: string) {}

  /** Adds one task node and returns the reference to its output. */
  add(input: NodeInput): Output {
    const id = this.freshId(input.baseId, input.definition);
    const upstream = new Set<string>();
    const source = (name: string, value: unknown): ValueSource => {
      if (isOutput(value)) {
        if (this.nodes.get(value.taskId)?.output !== value) {
          throw new DagDefinitionError(`task '${id}': argument '${name}' refers to task '${value.taskId}', which is not in DAG '${this.dagId}'`);
        }
        upstream.add(value.taskId);
        return { kind: "output", task: value.taskId };
      }
      if (typeof value === "function") throw new DagDefinitionError(`task '${id}': argument '${name}' is a function; pass data or a task output`);
      if (containsOutput(value)) {
        throw new DagDefinitionError(`task '${id}': argument '${name}' nests a task output inside a literal; pass the output as the argument itself`);
      }
      return { kind: "literal", value };
    };
    const args = Object.fromEntries(Object.entries(input.args).map(([k, v]) => [k, source(k, v)]));
    let expand: Record<string, ValueSource> | null = null;
    if (input.expand) {
      const names = Object.keys(input.expand);
      if (names.length === 0) throw new DagDefinitionError(`task '${id}': expand() needs at least one argument to map over`);
      for (const name of names) {
        if (OPTION_NAMES.has(name)) {
          throw new DagDefinitionError(`task '${id}': '${name}' is a task option and cannot be mapped; set it in the task's options instead`);
        }
        if (name in input.args) throw new DagDefinitionError(`task '${id}': argument '${name}' is given to both partial() and expand()`);
        const value = input.expand[name];
        if (!isOutput(value) && (typeof value !== "object" || value === null)) {
          throw new DagDefinitionError(`task '${id}': expand() argument '${name}' is ${value === null ? "null" : `a ${typeof value}`}; mapping needs a list, an object or a task output`);
        }
      }
      expand = Object.fromEntries(names.map((k) => [k, source(k, input.expand![k])]));
    }
    const builder = this;
    const output: Output = {
      kind: "mapflow.output",
      taskId: id,
      mapped: expand !== null,
      after(...ups: Output[]) {
        builder.addAfter(id, ups);
        return output;
      },
    };
    this.nodes.set(id, { id, definition: input.definition, operator: input.operator, args, expand, upstream, options: taskOptions(id, input.options), output });
    return output;
  }

  addAfter(id: string, ups: readonly unknown[]): void {
    const node = this.nodes.get(id)!;
    for (const up of ups) {
      if (!isOutput(up) || this.nodes.get(up.taskId)?.output !== up) {
        throw new DagDefinitionError(`task '${id}': after() takes outputs of tasks in DAG '${this.dagId}', got ${isOutput(up) ? `task '${up.taskId}' from elsewhere` : typeof up}`);
      }
      if (up.taskId === id) throw new DagDefinitionError(`task '${id}' cannot run after itself`);
      node.upstream.add(up.taskId);
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
      id: n.id, operator: n.operator.kind, args: n.args, expand: n.expand, upstream: [...n.upstream], options: n.options,
    }));
    const spec: DagSpec = {
      id: this.dagId,
      description: options.description ?? null,
      startDate: options.startDate ?? null,
      catchup: options.catchup ?? false,
      tasks,
    };
    return { kind: "mapflow.dag", spec, operators: new Map(order.map((n) => [n.id, n.operator])) };
  }

  static run(options: DagOptions, build: () => void): Dag {
    if (typeof options?.id !== "string" || !isToken(options.id)) {
      throw new DagDefinitionError(`DAG id ${JSON.stringify(options?.id)} is not valid: use letters, digits, '_' and '-' only`);
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
