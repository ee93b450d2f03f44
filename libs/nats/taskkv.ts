/** The `mf-kv` bucket behind `ctx.kv`: small values tasks share within a run or across a DAG's runs. */
import { StorageType } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import { BUCKETS } from "../names/index.ts";
import { replicasFor, type Nats } from "./connect.ts";
import { INLINE_VALUE_BYTES } from "./values.ts";

/** One value's limit: what one message carries inline; larger data belongs in an artifact. */
export const MAX_KV_VALUE_BYTES = INLINE_VALUE_BYTES;

/** Created on first use (idempotent). One revision a key: compare-and-set needs only the last. */
export function taskKvBucket(nats: Nats): Promise<KV> {
  return new Kvm(nats.js).create(BUCKETS.taskKv, {
    history: 1,
    storage: StorageType.File,
    replicas: replicasFor(nats.nc),
    maxValueSize: MAX_KV_VALUE_BYTES,
    description: "ctx.kv: values tasks share, keys scoped by run (run.<runId>.…) or DAG (dag.<dagId>.…)",
  });
}
