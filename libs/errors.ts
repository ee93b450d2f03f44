/** Error classes that steer control flow; check them with `instanceof`. */

/** The mark of a mapflow error class, the same in every copy of this module. */
const brand = (className: string) => Symbol.for(`mapflow.error.${className}`);

export class MapflowError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    // Marked with its class and each one above it, so instanceof holds across copies (see below).
    for (let c: unknown = new.target; c !== Error && typeof c === "function"; c = Object.getPrototypeOf(c)) {
      (this as unknown as Record<symbol, boolean>)[brand(c.name)] = true;
    }
  }

  /**
   * `instanceof` by mark rather than by prototype: a DAG file loaded as
   * CommonJS (a .ts file with no `"type": "module"` above it) gets its own
   * copy of the SDK and of these classes, and an error thrown by either copy
   * must check as the same class in the other (the worker's NonRetryableError
   * check; a task's `instanceof ArtifactError`).
   */
  static [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[brand(this.name)] === true;
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
