/**
 * Pausing a DAG's schedule (Airflow's `dags pause`): a DagPaused event on the
 * DAG's own subject, which the coordinator and the projector fold. Shared by
 * the CLI and the web API, so it imports no command-line code.
 */
import { decodeEvent } from "../../libs/codec/index.ts";
import { BadInputError } from "../../libs/errors.ts";
import { HEADERS, isToken, STREAMS, subjects } from "../../libs/names/index.ts";
import { appendEvent, type Nats } from "../../libs/nats/index.ts";
import { registeredDag } from "./runs.ts";

/** A DAG's pause state as the log has it now; DAGs start unpaused. */
export async function isPaused(nats: Nats, dagId: string): Promise<boolean> {
  const last = await nats.jsm.streams.getMessage(STREAMS.events, { last_by_subj: subjects.dagPaused(dagId) });
  if (!last) return false;
  const event = decodeEvent(last.data, last.header.get(HEADERS.eventType) || undefined);
  return event.type === "DagPaused" && event.paused;
}

/** Pauses or unpauses a registered DAG; `changed` is false when it already was (nothing is appended then). */
export async function setPaused(nats: Nats, dagId: string, paused: boolean, now = Date.now): Promise<{ dagId: string; paused: boolean; changed: boolean }> {
  if (!isToken(dagId)) throw new BadInputError(`'${dagId}' is not a valid DAG id: use letters, digits, '_' and '-' only`);
  await registeredDag(nats, dagId); // a clear error for a DAG this stack does not have
  if ((await isPaused(nats, dagId)) === paused) return { dagId, paused, changed: false };
  await appendEvent(nats, { type: "DagPaused", dagId, paused, at: now() });
  return { dagId, paused, changed: true };
}
