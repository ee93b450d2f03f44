/**
 * The artifacts object store: files tasks write with `ctx.artifact`. The log
 * records which exist (on each try's outcome); this bucket holds the bytes.
 */
import { StorageType } from "@nats-io/jetstream";
import { Objm, type ObjectResult, type ObjectStore } from "@nats-io/obj";
import { ARTIFACTS_BUCKET } from "../names/index.ts";
import { ValueGoneError } from "../errors.ts";
import { replicasFor, type Nats } from "./connect.ts";

/** The artifacts bucket, created on first use (idempotent; replicated like the streams). */
export function artifactStore(nats: Nats): Promise<ObjectStore> {
  return new Objm(nats.js).create(ARTIFACTS_BUCKET, {
    storage: StorageType.File,
    replicas: replicasFor(nats.nc),
    description: "files tasks stored with ctx.artifact; the event log names them",
  });
}

/** Opens `open()` when first needed and keeps it; a failed open is tried again next time. */
export function lazily<T>(open: () => Promise<T>): () => Promise<T> {
  let opened: Promise<T> | undefined;
  return () => {
    opened ??= open().catch((err) => {
      opened = undefined;
      throw err;
    });
    return opened;
  };
}

/** An artifact's bytes as a stream, with an error naming it when the object is gone. */
export async function readArtifact(store: ObjectStore, object: string): Promise<ObjectResult> {
  const result = await store.get(object);
  if (result === null) throw new ValueGoneError(`the artifact object '${object}' is not in bucket ${ARTIFACTS_BUCKET}; it was deleted (db clean) or never written`);
  return result;
}
