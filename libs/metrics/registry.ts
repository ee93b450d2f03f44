/** The one prom-client registry of this process, and prom-client's own process metrics. */
import { collectDefaultMetrics, Registry } from "prom-client";

export const registry = new Registry();

let processMetrics = false;

/** prom-client's process and Node.js metrics (CPU, memory, event loop lag, GC): started once, by whatever serves /metrics first. */
export function enableProcessMetrics(): void {
  if (processMetrics) return;
  processMetrics = true;
  collectDefaultMetrics({ register: registry });
}
