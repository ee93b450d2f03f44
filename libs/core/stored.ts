/**
 * Values too large to travel inside an event or a work message live in the
 * object store; the log and the work carry a `StoredValue` reference. The
 * core never fetches one: where expansion must look inside a stored value
 * (to count and split its items), the coordinator attaches the value first.
 */
import type { DagSpec, ValueSource } from "./spec.ts";

/** A stored value that is gone from the object store: expansion over it fails its task with this message. */
export class MissingValueError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MissingValueError";
  }
}

export class StoredValue {
  #value: unknown;
  #attached = false;
  #missing: string | null = null;

  /** `key` names the object; `bytes` is the value's encoded size. */
  constructor(readonly key: string, readonly bytes: number) {}

  get attached(): boolean {
    return this.#attached;
  }

  attach(value: unknown): void {
    this.#value = value;
    this.#attached = true;
  }

  /** Records that the object is gone, and why; reading the value then fails its task instead of the coordinator. */
  missing(why: string): void {
    this.#missing = why;
    this.#attached = true;
  }

  /** The value, once attached; the coordinator attaches every value that expansion reads (see `iteratedOutputs`). */
  value(): unknown {
    if (this.#missing !== null) throw new MissingValueError(this.#missing);
    if (!this.#attached) throw new Error(`stored value ${this.key} was read before it was fetched from the object store`);
    return this.#value;
  }

  /** How the read model, the CLI and JSON show it. */
  toJSON(): { $stored: string; bytes: number } {
    return { $stored: this.key, bytes: this.bytes };
  }
}

/** Whether a value is, or holds, a stored reference (a worker fetches those before the task runs). */
export function holdsStored(value: unknown): boolean {
  if (value instanceof StoredValue) return true;
  if (Array.isArray(value)) return value.some(holdsStored);
  // Only plain objects: a Deferred's input is walked by the worker anyway, and bytes hold no references.
  if (typeof value === "object" && value !== null && Object.getPrototypeOf(value) === Object.prototype) return Object.values(value).some(holdsStored);
  return false;
}

/** Tasks whose outputs expansion looks inside: what a mapping, zip, concat or `out.map` iterates. */
export function iteratedOutputs(spec: DagSpec): Set<string> {
  const tasks = new Set<string>();
  const iterated = (source: ValueSource): void => {
    switch (source.kind) {
      case "output":
        tasks.add(source.task);
        return;
      case "map":
        iterated(source.source);
        return;
      case "zip":
      case "concat":
        source.sources.forEach(iterated);
        return;
      default:
    }
  };
  /** Argument sources are iterated only below a map, zip or concat. */
  const within = (source: ValueSource): void => {
    if (source.kind === "map" || source.kind === "zip" || source.kind === "concat") iterated(source);
  };
  const mapping = (m: DagSpec["tasks"][number]["mapping"]): void => {
    if (m?.kind === "product") Object.values(m.kwargs).forEach(iterated);
    if (m?.kind === "kwargs") iterated(m.source);
  };
  for (const task of spec.tasks) {
    mapping(task.mapping);
    Object.values(task.args).forEach(within);
  }
  for (const group of spec.groups) {
    mapping(group.mapping);
    // A group argument can be mapped over by a task inside the group.
    Object.values(group.args).forEach(iterated);
  }
  return tasks;
}
