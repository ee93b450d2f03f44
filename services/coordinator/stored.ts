/**
 * Results stored by reference that expansion must look inside (to count and
 * split their items) are fetched before they are folded, so the pure core
 * finds them attached. Other references stay unfetched: workers fetch them.
 */
import type { ObjectStore } from "@nats-io/obj";
import { iteratedOutputs, StoredValue, type DagSpec, type RunState } from "../../libs/core/index.ts";
import type { InstancesFinished, InstanceSucceeded } from "../../libs/events/index.ts";
import { fetchValue, isTransient, lazyValueStore, type Nats } from "../../libs/nats/index.ts";
import { ValueGoneError } from "../../libs/errors.ts";
import type { Logger } from "../../libs/log/index.ts";

export type StoredValues = {
  /** The value bucket, opened once. */
  bucket(): Promise<ObjectStore>;
  /** Fetches an arriving result (or a batch's) if expansion will read inside it. */
  attachResults(state: RunState | undefined, event: InstanceSucceeded | InstancesFinished): Promise<void>;
  /** Fetches every such result of a run folded from the log or a snapshot. */
  attachAll(state: RunState): Promise<void>;
};

export function storedValues(nats: Nats, log: Logger, active: () => boolean): StoredValues {
  const bucket = lazyValueStore(nats);
  const iterated = new WeakMap<DagSpec, Set<string>>();
  const iteratedIn = (spec: DagSpec) => {
    let tasks = iterated.get(spec);
    if (!tasks) iterated.set(spec, (tasks = iteratedOutputs(spec)));
    return tasks;
  };
  /** A gone or unreadable object fails the task that maps over it; JetStream recovering is waited out while this coordinator runs. */
  const attach = async (value: unknown) => {
    for (let attempt = 0; value instanceof StoredValue && !value.attached && active(); attempt++) {
      try {
        await fetchValue(await bucket(), value);
      } catch (err) {
        if (!isTransient(err)) value.missing(err instanceof ValueGoneError ? err.message : `stored value ${value.key} cannot be read: ${(err as Error).message}`);
        else {
          log.warn({ err, key: value.key, attempt }, "could not fetch a stored value yet; retrying");
          await new Promise((r) => setTimeout(r, Math.min(5000, 200 * 2 ** attempt)));
        }
      }
    }
  };
  return {
    bucket,
    async attachResults(state, event) {
      if (!state || !iteratedIn(state.spec).has(event.taskId)) return;
      if (event.type === "InstanceSucceeded") await attach(event.result);
      else for (const outcome of event.outcomes) await attach(outcome.result);
    },
    async attachAll(state) {
      for (const taskId of iteratedIn(state.spec)) {
        for (const instance of state.tasks[taskId]?.instances ?? []) await attach(instance.result);
      }
    },
  };
}
