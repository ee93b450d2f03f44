/**
 * Values too large for a message go to the JetStream object store and travel
 * by reference: over `INLINE_VALUE_BYTES` a result or work item is stored;
 * over the hard limit (`MAPFLOW_MAX_VALUE_BYTES`, 64 MB by default) it fails
 * its instance with its size and the limit.
 */
import { StorageType } from "@nats-io/jetstream";
import { Objm, type ObjectStore } from "@nats-io/obj";
import { decodeValue } from "../codec/index.ts";
import { StoredValue } from "../core/stored.ts";
import { VALUES_BUCKET } from "../names/index.ts";
import { BadInputError, ValueGoneError } from "../errors.ts";
import { replicasFor, type Nats } from "./connect.ts";

/** Larger values leave the event or work message for the object store (JetStream's max_payload is 8 MB here). */
export const INLINE_VALUE_BYTES = 1024 * 1024;
export const DEFAULT_MAX_VALUE_BYTES = 64 * 1024 * 1024;

/** The hard limit on one value: `MAPFLOW_MAX_VALUE_BYTES`, else 64 MB. */
export function maxValueBytes(env: NodeJS.ProcessEnv = process.env): number {
  const text = env["MAPFLOW_MAX_VALUE_BYTES"];
  if (text === undefined || text === "") return DEFAULT_MAX_VALUE_BYTES;
  const n = Number(text);
  if (!Number.isInteger(n) || n <= INLINE_VALUE_BYTES) {
    throw new BadInputError(`MAPFLOW_MAX_VALUE_BYTES is '${text}'; give a whole number of bytes above ${INLINE_VALUE_BYTES} (the inline size), e.g. 67108864 for 64 MB`);
  }
  return n;
}

/** The value bucket, created on first use (idempotent; replicated like the streams). */
export function valueStore(nats: Nats): Promise<ObjectStore> {
  return new Objm(nats.js).create(VALUES_BUCKET, { storage: StorageType.File, replicas: replicasFor(nats.nc) });
}

/** The value bucket, opened when first needed and then kept; a failed open is tried again next time. */
export function lazyValueStore(nats: Nats): () => Promise<ObjectStore> {
  let opened: Promise<ObjectStore> | undefined;
  return () => {
    opened ??= valueStore(nats).catch((err) => {
      opened = undefined;
      throw err;
    });
    return opened;
  };
}

/** Stores an encoded value under `key`; the reference travels instead. */
export async function storeValue(store: ObjectStore, key: string, data: Uint8Array): Promise<StoredValue> {
  await store.putBlob({ name: key }, data);
  return new StoredValue(key, data.byteLength);
}

/** The bytes of an object, with an error naming it when it is gone. */
export async function fetchBytes(store: ObjectStore, key: string): Promise<Uint8Array> {
  const data = await store.getBlob(key);
  if (data === null) throw new ValueGoneError(`the object store has no value '${key}' (bucket ${VALUES_BUCKET}); it was deleted or never written`);
  return data;
}

/** Fetches and decodes a stored value, and attaches it to its reference. */
export async function fetchValue(store: ObjectStore, ref: StoredValue): Promise<unknown> {
  if (!ref.attached) ref.attach(decodeValue(await fetchBytes(store, ref.key)));
  return ref.value();
}
