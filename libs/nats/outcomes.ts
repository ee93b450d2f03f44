/**
 * Whether the log already holds a try's outcome, for a worker given work
 * again (its first worker died between the append and the ack). An outcome
 * is on its instance's subject (a single event) or in one of its chunk's
 * InstancesFinished, a few messages read one after another.
 */
import type { StoredMsg } from "@nats-io/jetstream";
import { decodeEvent } from "../codec/index.ts";
import { outcomeChunk, outcomeTry, type MapflowEvent } from "../events/index.ts";
import { HEADERS, STREAMS, subjects } from "../names/index.ts";
import { CodecError, SchemaTooNewError } from "../errors.ts";
import type { Nats } from "./connect.ts";

function eventOf(stored: StoredMsg): MapflowEvent {
  const schema = Number(stored.header.get(HEADERS.schemaVersion) || NaN);
  return decodeEvent(stored.data, stored.header.get(HEADERS.eventType) || undefined, Number.isFinite(schema) ? schema : undefined);
}

export async function hasOutcome(nats: Nats, runId: string, taskId: string, mapIndex: number, tryNumber: number): Promise<boolean> {
  const last = await nats.jsm.streams.getMessage(STREAMS.events, { last_by_subj: subjects.instanceOutcome(runId, taskId, mapIndex) });
  if (last && (outcomeTry(eventOf(last), taskId, mapIndex) ?? 0) >= tryNumber) return true;
  const chunk = subjects.chunkOutcomes(runId, taskId, outcomeChunk(mapIndex));
  // The server's "next message on this subject from a sequence" (STREAM.MSG.GET next_by_subj), which the client's types leave out.
  const next = (seq: number) => nats.jsm.streams.getMessage(STREAMS.events, { next_by_subj: chunk, seq } as unknown as { seq: number });
  for (let stored = await next(1); stored; stored = await next(stored.seq + 1)) {
    // A server that ignored next_by_subj would answer with other subjects' messages: never read those as this chunk's.
    if (stored.subject !== chunk) throw new Error(`the server answered a read of ${chunk} with a message of ${stored.subject}: it needs STREAM.MSG.GET's next_by_subj (nats-server 2.10 or newer)`);
    let event: MapflowEvent;
    try {
      event = eventOf(stored);
    } catch (err) {
      if (err instanceof CodecError && !(err instanceof SchemaTooNewError)) continue; // not an event: as every reader, skip it
      throw err;
    }
    if ((outcomeTry(event, taskId, mapIndex) ?? 0) >= tryNumber) return true;
  }
  return false;
}
