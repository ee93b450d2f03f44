/**
 * Which finished tries a worker appends together. Outcomes of one task's
 * instances in one chunk of map indexes (OUTCOME_CHUNK) that finished in
 * the same turn become one InstancesFinished; any other outcome, one that
 * must keep its own message id (`repeat`), and one larger than
 * OUTCOME_BATCH_BYTES, is appended as its own event.
 */
import type { JsMsg } from "@nats-io/jetstream";
import type { Hold } from "./held.ts";
import { outcomeChunk, type InstanceFailed, type InstanceSucceeded } from "../../libs/events/index.ts";

/** A try's outcome waiting for its turn's appends; `done` lets the try's handler return. */
export type Finished = {
  readonly msg: JsMsg;
  readonly hold: Hold;
  readonly event: InstanceSucceeded | InstanceFailed;
  /** The size of what it carries (its result or error), to keep one message of a batch well under the server's max_payload. */
  readonly bytes: number;
  /**
   * Its try may have another copy (redelivered, published again, held while JetStream was away): it
   * goes alone, under its try's own message id, and looks for the other copy's outcome before it appends.
   */
  readonly repeat: boolean;
  readonly done: () => void;
};

/** A batch's outcomes carry at most this many bytes; an outcome larger than this goes alone. */
export const OUTCOME_BATCH_BYTES = 256 * 1024;

/** What an outcome carries besides its result, near enough for OUTCOME_BATCH_BYTES: its error, label and artifact list. */
export function outcomeBytes(event: InstanceSucceeded | InstanceFailed): number {
  const error = event.type === "InstanceFailed" ? event.error.name.length + event.error.message.length + (event.error.stack?.length ?? 0) : 0;
  const artifacts = event.artifacts?.reduce((sum, a) => sum + a.name.length + a.contentType.length + a.object.length + 16, 0) ?? 0;
  return error + (event.label?.length ?? 0) + artifacts;
}

/** The wave's outcomes as groups to append, each of one run, task and chunk, in the order they finished. */
export function outcomeGroups(wave: readonly Finished[]): Finished[][] {
  const groups: Finished[][] = [];
  const open = new Map<string, { group: Finished[]; bytes: number }>();
  for (const finished of wave) {
    if (finished.repeat || finished.bytes > OUTCOME_BATCH_BYTES) {
      groups.push([finished]);
      continue;
    }
    const { runId, taskId, mapIndex } = finished.event;
    const key = `${runId}\n${taskId}\n${outcomeChunk(mapIndex)}`;
    const current = open.get(key);
    if (current && current.bytes + finished.bytes <= OUTCOME_BATCH_BYTES) {
      current.group.push(finished);
      current.bytes += finished.bytes;
      continue;
    }
    const group = [finished];
    groups.push(group);
    open.set(key, { group, bytes: finished.bytes });
  }
  return groups;
}
