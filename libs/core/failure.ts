/** A thrown value as the InstanceFailed fields that record it. */
import type { ErrorInfo } from "../events/index.ts";
import { NonRetryableError } from "../errors.ts";

export function errorInfo(err: unknown): ErrorInfo {
  if (err instanceof Error) return { name: err.name, message: err.message, ...(err.stack ? { stack: err.stack } : {}) };
  return { name: "Error", message: String(err) };
}

/** The error of a failed try, and whether a retry is pointless (the task code or the worker said so). */
export function failureOf(err: unknown): { error: ErrorInfo; noRetry?: true } {
  return err instanceof NonRetryableError ? { error: errorInfo(err), noRetry: true } : { error: errorInfo(err) };
}
