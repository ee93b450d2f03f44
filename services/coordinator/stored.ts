/**
 * Results stored by reference that expansion must look inside (to count and
 * split their items) are fetched before they are folded, so the pure core
 * finds them attached. Other references stay unfetched: workers fetch them.
 */
import type { ObjectStore } from "@nats-io/obj";
import { iteratedOutputs, StoredValue, type DagSpec, type RunState } from "../../libs/core/index.ts";
import type { InstanceSucceeded } from "../../libs/events/index.ts";
import { fetchValue, valueStore, ValueGoneError, type Nats } from "../../libs/nats/index.ts";
import type { Logger } from "../../libs/log/index.ts";

export type StoredValues = {
  /** The value bucket, opened once. */
  bucket(): Promise<ObjectStore>;
  /** Fetches an arriving result if expansion will read inside it. */
  attachResult(state: RunState | undefined, event: InstanceSucceeded): Promise<void>;
  /** Fetches every such result of a run folded from the log or a snapshot. */
  attachAll(state: RunState): Promise<void>;
};

export function storedValues(nats: Nats, log: Logger): StoredValues {
  let opened: Promise<ObjectStore> | undefined;
  const bucket = () => {
    opened ??= valueStore(nats).catch((err) => {
      opened = undefined;
      throw err;
    });
    return opened;
  };
  const iterated = new WeakMap<DagSpec, Set<string>>();
  const iteratedIn = (spec: DagSpec) => {
    let tasks = iterated.get(spec);
    if (!tasks) iterated.set(spec, (tasks = iteratedOutputs(spec)));
    return tasks;
  };
  /** A gone object fails the task that maps over it; any other failure (JetStream recovering) is waited out. */
  const attach = async (value: unknown) => {
    for (let attempt = 0; value instanceof StoredValue && !value.attached; attempt++) {
      try {
        await fetchValue(await bucket(), value);
      } catch (err) {
        if (err instanceof ValueGoneError) value.missing(err.message);
        else {
          log.warn({ err, key: value.key, attempt }, "could not fetch a stored value yet; retrying");
          await new Promise((r) => setTimeout(r, Math.min(5000, 200 * 2 ** attempt)));
        }
      }
    }
  };
  return {
    bucket,
    async attachResult(state, event) {
      if (state && event.result instanceof StoredValue && iteratedIn(state.spec).has(event.taskId)) await attach(event.result);
    },
    async attachAll(state) {
      for (const taskId of iteratedIn(state.spec)) {
        for (const instance of state.tasks[taskId]?.instances ?? []) await attach(instance.result);
      }
    },
  };
}
