/**
 * The DAGs as the coordinator's scheduler sees them: each one's newest
 * registration (its spec holds the schedule) and whether it is paused. Read
 * from the log's DAG subjects: at start only the last message of each (one
 * registration and one pause state per DAG, however long the log), then
 * every new one as it is appended.
 */
import type { DagRegistered } from "../../libs/events/index.ts";
import { STREAMS, subjects } from "../../libs/names/index.ts";
import { followEvents, logBadEvent, type Nats } from "../../libs/nats/index.ts";
import type { Logger } from "../../libs/log/index.ts";

export type DagEntry = {
  /** Undefined while only a pause has been seen (a pause is kept for a registration that comes later). */
  readonly registration: DagRegistered | undefined;
  readonly paused: boolean;
};

export type DagDirectory = {
  /** Whether it holds everything the log held when it started: before that, a pause may still be unread. */
  ready(): boolean;
  entries(): IterableIterator<[string, DagEntry]>;
  stop(): Promise<void>;
};

/** Follows the DAG subjects; `changed` hears of each DAG whose registration or pause state moved. */
export async function followDags(nats: Nats, log: Logger, changed: (dagId: string) => void): Promise<DagDirectory> {
  const dags = new Map<string, DagEntry>();
  // Ready once the newest DAG message there was at start has been read (at once, if there is none).
  const last = await nats.jsm.streams.getMessage(STREAMS.events, { last_by_subj: subjects.allDags });
  const target = last?.seq ?? 0;
  let ready = target === 0;
  let broken = false;
  const follow = await followEvents(nats.js, subjects.allDags, 1, logBadEvent(log), { lastPerSubject: true });
  const loop = (async () => {
    for await (const { seq, event } of follow) {
      if (event?.type === "DagRegistered") {
        dags.set(event.dagId, { registration: event, paused: dags.get(event.dagId)?.paused ?? false });
        changed(event.dagId);
      } else if (event?.type === "DagPaused") {
        dags.set(event.dagId, { registration: dags.get(event.dagId)?.registration, paused: event.paused });
        changed(event.dagId);
      }
      if (seq >= target) ready = true;
    }
  })().catch((err) => {
    // Scheduling from a view that no longer moves could run a DAG paused meanwhile: stop instead.
    broken = true;
    log.error({ err }, "following the DAG registrations stopped; no scheduled runs until the coordinator restarts");
  });
  return {
    ready: () => ready && !broken,
    entries: () => dags.entries(),
    async stop() {
      await follow.stop();
      await loop;
    },
  };
}
