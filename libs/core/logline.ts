/** A task's log lines as they are stored for each try (written by workers, read by the UI and `mapflow logs`). */

/** pino's levels, lowest first. */
export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal"] as const;

export type LogLevel = (typeof LOG_LEVELS)[number];

/** One line a task wrote through `ctx.log`. */
export type LogLine = {
  /** Epoch ms, when the task wrote it. */
  readonly at: number;
  readonly level: LogLevel;
  readonly msg: string;
  /** The logged object and the bindings of any child the task made, secrets redacted; absent when there were none. */
  readonly fields?: Readonly<Record<string, unknown>>;
};

export function isLogLevel(value: unknown): value is LogLevel {
  return typeof value === "string" && (LOG_LEVELS as readonly string[]).includes(value);
}
