/** Error classes that steer control flow; check them with `instanceof`. */

export class MapflowError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
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

const NON_RETRYABLE = Symbol.for("mapflow.NonRetryableError");

/**
 * Thrown by task code (or by the worker, for inputs that cannot be made) when
 * another try cannot mend the failure: the instance fails at once, whatever
 * its `retries` (Airflow's AirflowFailException, Temporal's non-retryable
 * failure).
 */
export class NonRetryableError extends MapflowError {
  /** Shared by every copy of this module: a DAG file loaded as CommonJS gets a copy of its own. */
  readonly [NON_RETRYABLE] = true;

  /** `instanceof NonRetryableError` holds for an error of any copy; a subclass checks as usual. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    if (this !== NonRetryableError) return Function.prototype[Symbol.hasInstance].call(this, value);
    return typeof value === "object" && value !== null && (value as { [NON_RETRYABLE]?: unknown })[NON_RETRYABLE] === true;
  }
}

/** A task's `ctx.kv` call was refused (its key or value): it fails that try, naming what to change. */
export class TaskKvError extends MapflowError {}
