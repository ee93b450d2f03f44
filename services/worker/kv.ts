/**
 * `ctx.kv`: a key-value store tasks share, in the `mf-kv` bucket. Keys are
 * scoped to the run by default (`run.<runId>.<key>`), so concurrent runs of
 * a DAG never see each other's values; `ctx.kv.dag` is the DAG's scope
 * (`dag.<dagId>.<key>`), shared by all its runs. `update` is a
 * compare-and-set on the key's revision, retried on conflict, so concurrent
 * instances lose no update. The bucket is opened once per worker, when a
 * task first uses `ctx.kv`.
 */
import type { KV } from "@nats-io/kv";
import { JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";
import { decodeValue, encodeTaskValue } from "../../libs/codec/index.ts";
import type { WorkItem } from "../../libs/core/work.ts";
import { TaskKvError } from "../../libs/errors.ts";
import { isKvKey, kvKeys, MAX_KV_KEY_LENGTH } from "../../libs/names/index.ts";
import { lazily, MAX_KV_VALUE_BYTES, taskKvBucket, whileJetStreamRecovers, type Nats } from "../../libs/nats/index.ts";
import type { TaskKv, TaskKvScope } from "../../libs/sdk/types.ts";

export type TaskKvFactory = (item: WorkItem) => TaskKv;

/** Conflicting writes one `update` rides out before it gives up. */
const MAX_UPDATE_ATTEMPTS = 200;

/** Another writer changed the key between our read and our write. */
function isConflict(err: unknown): boolean {
  return err instanceof JetStreamApiError &&
    (err.code === JetStreamApiCodes.StreamWrongLastSequence || err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown);
}

export function taskKvs(nats: Nats): TaskKvFactory {
  const bucket = lazily(() => taskKvBucket(nats));
  const recovering = <T>(step: (kv: KV) => Promise<T>) => whileJetStreamRecovers(async () => step(await bucket()));

  function scope(what: string, fullKey: (key: string) => string): TaskKvScope {
    const keyOf = (key: unknown): string => {
      if (typeof key !== "string" || !isKvKey(key)) {
        throw new TaskKvError(`${what} key ${JSON.stringify(key)} is not valid: use up to ${MAX_KV_KEY_LENGTH} letters, digits, '_', '-', '=' or '/', with single dots between parts (e.g. 'best' or 'scores.fold-1'); no spaces or wildcards`);
      }
      return fullKey(key);
    };
    const bytesOf = (key: string, value: unknown): Uint8Array => {
      if (value === undefined) throw new TaskKvError(`${what}.put('${key}', undefined): store null, or delete the key`);
      let data: Uint8Array;
      try {
        data = encodeTaskValue(value, "value");
      } catch (err) {
        throw new TaskKvError(`${what} value for '${key}' cannot be stored: ${(err as Error).message}; store plain data: numbers, strings, lists, objects`);
      }
      if (data.byteLength > MAX_KV_VALUE_BYTES) {
        throw new TaskKvError(`${what} value for '${key}' is ${data.byteLength} bytes, over the ${MAX_KV_VALUE_BYTES}-byte limit; store large data with ctx.artifact and keep its reference here`);
      }
      return data;
    };
    const read = async (full: string) => {
      const entry = await recovering((kv) => kv.get(full));
      return entry && entry.operation === "PUT" ? { value: decodeValue(entry.value), revision: entry.revision } : { value: undefined, revision: 0 };
    };

    return {
      async get(key) {
        return (await read(keyOf(key))).value;
      },
      async put(key, value) {
        const full = keyOf(key);
        const data = bytesOf(key, value);
        await recovering((kv) => kv.put(full, data));
      },
      async delete(key) {
        const full = keyOf(key);
        await recovering((kv) => kv.delete(full));
      },
      async update(key, fn) {
        const full = keyOf(key);
        for (let attempt = 1; ; attempt++) {
          const current = await read(full);
          const next = await fn(current.value as never);
          if (next === undefined) return current.value as never; // nothing to change
          const data = bytesOf(key, next);
          try {
            // Revision 0: the key has no value (never set, or deleted); create() fails if another writer set it meanwhile.
            await recovering((kv) => (current.revision === 0 ? kv.create(full, data) : kv.update(full, data, current.revision)));
            return next;
          } catch (err) {
            if (!isConflict(err)) throw err;
            if (attempt >= MAX_UPDATE_ATTEMPTS) {
              throw new TaskKvError(`${what}.update('${key}') gave up after ${attempt} writes that other tasks changed first; update a key fewer tasks share at once`, { cause: err });
            }
            // Spread the writers out a little, more the more they collide (randomness is fine here: nothing replays it).
            if (attempt > 3) await new Promise((r) => setTimeout(r, Math.random() * Math.min(50, attempt * 2)));
          }
        }
      },
    };
  }

  return (item) => {
    const run = scope("ctx.kv", (key) => kvKeys.run(item.runId, key));
    return Object.assign(run, { dag: scope("ctx.kv.dag", (key) => kvKeys.dag(item.dagId, key)) });
  };
}
