/** Error classes that steer control flow; check them with `instanceof`. */

/**
 * Where a mapflow error class keeps its mark: a symbol from the global
 * registry, spelled out per class below, so every copy of this module
 * marks and recognises the same classes.
 */
const CLASS_MARK = Symbol("mapflow error class mark");
type Marked = { readonly [CLASS_MARK]?: symbol };

export class MapflowError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    // Marked (not enumerable, so no copy or printout carries it) with its class and each mapflow class above it.
    for (let c: unknown = new.target; typeof c === "function" && c !== Error; c = Object.getPrototypeOf(c)) {
      if (Object.hasOwn(c, CLASS_MARK)) Object.defineProperty(this, (c as Marked)[CLASS_MARK]!, { value: true });
    }
  }

  /**
   * `instanceof` a mapflow class by its mark rather than by prototype: a DAG
   * file loaded as CommonJS (a .ts file with no `"type": "module"` above it)
   * gets its own copy of the SDK and of these classes, and an error thrown
   * by either copy must check as the same class in the other (the worker's
   * NonRetryableError check; a task's `instanceof ArtifactError`). A class
   * of the user's own exists in one copy only, and checks by prototype.
   */
  static [Symbol.hasInstance](value: unknown): boolean {
    if (!Object.hasOwn(this, CLASS_MARK)) return Function.prototype[Symbol.hasInstance].call(this, value);
    return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[(this as Marked)[CLASS_MARK]!] === true;
  }
}

/** A payload on the wire is not what its type says. */
export class CodecError extends MapflowError {}

/** The log was written by a newer mapflow: upgrade before reading it. */
export class SchemaTooNewError extends CodecError {}

/** A DAG file is malformed: names the file and task. */
export class DagDefinitionError extends MapflowError {}

/** The user gave bad input (a flag, `--conf`, an unknown DAG): exit code 2. */
export class BadInputError extends MapflowError {}

/** NATS could not be reached: exit code 3. */
export class UnreachableError extends MapflowError {}

/** A stored value's object is not in the object store (deleted, or never written). */
export class ValueGoneError extends MapflowError {}

/** A task's `ctx.artifact` call was refused (its name, size or content type): it fails that try, naming what to change. */
export class ArtifactError extends MapflowError {}

/**
 * Thrown by task code (or by the worker, for inputs that cannot be made) when
 * another try cannot mend the failure: the instance fails at once, whatever
 * its `retries` (Airflow's AirflowFailException, Temporal's non-retryable
 * failure).
 */
export class NonRetryableError extends MapflowError {}

/** A task's `ctx.kv` call was refused (its key or value): it fails that try, naming what to change. */
export class TaskKvError extends MapflowError {}

// Each mark by a fixed name, not the class's own: a bundler may rename classes.
for (const [cls, name] of [
  [MapflowError, "MapflowError"], [CodecError, "CodecError"], [SchemaTooNewError, "SchemaTooNewError"],
  [DagDefinitionError, "DagDefinitionError"], [BadInputError, "BadInputError"], [UnreachableError, "UnreachableError"],
  [ValueGoneError, "ValueGoneError"], [ArtifactError, "ArtifactError"], [NonRetryableError, "NonRetryableError"], [TaskKvError, "TaskKvError"],
] as const) {
  Object.defineProperty(cls, CLASS_MARK, { value: Symbol.for(`mapflow.error.${name}`) });
}
