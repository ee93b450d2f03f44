/**
 * A worker process's heap policy. A worker keeps little alive (~20 MiB: its
 * modules, a pull batch, the tries in flight) but makes garbage fast, and
 * V8's default heap growth (up to 4× the live size between full collections
 * on a machine with memory) let its old space sit at ~50 MiB, mostly
 * garbage. Growing it by half instead kept a 100,000-instance run's worker
 * at ~140 MiB peak RSS instead of ~180, at the same speed within the
 * machine's noise (`make bench`). Only the `mapflow worker` process does
 * this: an embedded stack shares its heap with the coordinator, whose live
 * state is large, where frequent full collections would cost.
 */
import { setFlagsFromString } from "node:v8";

const FLAG = "--heap-growing-percent";
export const WORKER_HEAP_GROWING_PERCENT = 50;

/** The V8 flag a worker sets, or none when its node was started with its own heap growth. */
export function workerHeapFlag(execArgv: readonly string[]): string | undefined {
  const given = execArgv.some((arg) => arg.replaceAll("_", "-").startsWith(FLAG));
  return given ? undefined : `${FLAG}=${WORKER_HEAP_GROWING_PERCENT}`;
}

/**
 * V8 reads the heap growth at every full collection, so unlike the young
 * generation's size (fixed at start) it takes effect when set at run time.
 */
export function keepWorkerHeapTight(execArgv: readonly string[] = process.execArgv): void {
  const flag = workerHeapFlag(execArgv);
  if (flag) setFlagsFromString(flag);
}
