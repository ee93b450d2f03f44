/**
 * `ctx.artifact`: a try's files, stored in the artifacts object store as
 * the task writes them and recorded on the try's outcome event. Nothing is
 * made for a try that never calls it (the context makes a TryArtifacts on
 * first use), and the store is opened once per worker, when first needed.
 */
import { ulid } from "ulid";
import { artifactNameProblem, artifactSizeProblem, contentTypeProblem, defaultContentType, MAX_ARTIFACTS_PER_TRY } from "../../libs/core/artifacts.ts";
import type { WorkItem } from "../../libs/core/work.ts";
import { ArtifactError } from "../../libs/errors.ts";
import type { ArtifactRef } from "../../libs/events/index.ts";
import { artifactObjects } from "../../libs/names/index.ts";
import { artifactStore, lazily, whileJetStreamRecovers, type Nats } from "../../libs/nats/index.ts";

/** One try's artifacts. */
export type TryArtifacts = {
  write(name: string, data: Uint8Array | string, contentType?: string): Promise<ArtifactRef>;
  /** Waits for the writes in flight, refuses any later one, and gives what was stored, in the order the task wrote it. */
  seal(): Promise<ArtifactRef[]>;
};

/** Makes a try's TryArtifacts; one per worker. */
export type TryArtifactsFactory = (item: WorkItem) => TryArtifacts;

const encoder = new TextEncoder();

export function tryArtifacts(nats: Nats, maxBytes: number): TryArtifactsFactory {
  const store = lazily(() => artifactStore(nats));
  return (item) => {
    /** Stored refs by the position of their write call; a failed write leaves a hole. */
    const stored: (ArtifactRef | undefined)[] = [];
    const names = new Set<string>();
    const inFlight = new Set<Promise<unknown>>();
    let sealed = false;
    // Told apart from another copy of this try (a redelivery while this one still runs): only one is recorded.
    let unique: string | undefined;
    const refuse = (message: string) => Promise.reject(new ArtifactError(`task '${item.taskId}' (map index ${item.mapIndex}, try ${item.try}): ${message}`));

    async function put(slot: number, name: string, bytes: Uint8Array, contentType: string): Promise<ArtifactRef> {
      unique ??= ulid();
      const object = artifactObjects.object(item.runId, item.taskId, item.mapIndex, item.try, unique, name);
      const metadata = { contentType, runId: item.runId, taskId: item.taskId, mapIndex: String(item.mapIndex), try: String(item.try) };
      try {
        await whileJetStreamRecovers(async () => (await store()).putBlob({ name: object, metadata }, bytes));
      } catch (err) {
        names.delete(name); // the task may try again under the same name
        throw new ArtifactError(`task '${item.taskId}' could not store artifact '${name}' (${(err as Error).message})`, { cause: err });
      }
      const ref: ArtifactRef = { name, contentType, bytes: bytes.byteLength, object };
      stored[slot] = ref;
      return ref;
    }

    return {
      write(name, data, contentType) {
        if (sealed) return refuse(`artifact '${String(name)}' came after the try ended; await ctx.artifact(…) before the task returns`);
        const problem = artifactNameProblem(name) ??
          (typeof data === "string" || data instanceof Uint8Array ? undefined : `artifact '${name}': data must be a string or a Uint8Array (a Buffer), got ${data === null ? "null" : typeof data}`) ??
          contentTypeProblem(contentType ?? defaultContentType(data));
        if (problem) return refuse(problem);
        if (names.has(name)) return refuse(`artifact '${name}' was already written in this try; give each file its own name`);
        if (names.size >= MAX_ARTIFACTS_PER_TRY) return refuse(`a try may store at most ${MAX_ARTIFACTS_PER_TRY} artifacts; bundle small files into one (a .zip or .tar)`);
        const bytes = typeof data === "string" ? encoder.encode(data) : data;
        const tooBig = artifactSizeProblem(name, bytes.byteLength, maxBytes);
        if (tooBig) return refuse(tooBig);
        names.add(name);
        const written = put(stored.push(undefined) - 1, name, bytes, contentType ?? defaultContentType(data));
        inFlight.add(written);
        const done = () => inFlight.delete(written);
        // Handled here, so a task that never awaits a failed write cannot crash the worker; one that awaits still gets the error.
        written.then(done, done);
        return written;
      },
      async seal() {
        sealed = true;
        await Promise.allSettled([...inFlight]);
        return stored.filter((ref): ref is ArtifactRef => ref !== undefined);
      },
    };
  };
}
