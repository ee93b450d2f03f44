/**
 * The projector: folds the whole log into the SQLite read model with the
 * same `evolve` as the coordinator, a batch of events and its checkpoint per
 * transaction. After a restart it resumes from the stored sequence; the run
 * states it no longer holds are folded again from that run's own events.
 */
import { STREAMS, subjects } from "../../libs/names/index.ts";
import { foldRun, followEvents, logBadEvent, type Follow, type Nats } from "../../libs/nats/index.ts";
import { ReadModel } from "../../libs/store/index.ts";
import type { Logger } from "../../libs/log/index.ts";
import { countEvent, eventsApplied, projectionLags, type ProjectionLag } from "../../libs/metrics/index.ts";
import { EVENTS_PER_COMMIT, ProjectionFold } from "./fold.ts";

export type ProjectorOptions = {
  nats: Nats;
  log: Logger;
  dbPath: string;
  /** Events per transaction at most (default EVENTS_PER_COMMIT). */
  batchSize?: number;
  /** How long a caught-up projector gathers events before it writes them (default 20 ms). */
  flushMs?: number;
};
export type Projector = {
  readonly model: ReadModel;
  /** Resolves once the read model has applied the log up to at least `seq`. */
  waitFor(seq: number): Promise<void>;
  stop(): Promise<void>;
};

/** The longest a live projector holds events before writing them, however far behind it is. */
const LIVE_BATCH_MS = 1000;

export async function startProjector(options: ProjectorOptions): Promise<Projector> {
  const { nats, log } = options;
  const batchSize = options.batchSize ?? EVENTS_PER_COMMIT;
  const flushMs = options.flushMs ?? 20;
  const model = new ReadModel(options.dbPath);
  let applied = model.lastSeq();
  const waiters: { seq: number; resolve: () => void }[] = [];

  let follow: Follow;
  try {
    follow = await followEvents(nats.js, subjects.allEvents, applied + 1, logBadEvent(log));
  } catch (err) {
    model.close(); // a start that is tried again opens its own
    throw err;
  }
  const fold = new ProjectionFold(model);
  let flushTimer: NodeJS.Timeout | undefined;
  /** When the first event not yet written was applied. */
  let batchSince: number | undefined;
  /** The projector has reached the log's end once: from then on its rows stay within a second of it. */
  let live = false;
  const flush = () => {
    clearTimeout(flushTimer);
    flushTimer = undefined;
    batchSince = undefined;
    applied = fold.commit();
    for (let i = waiters.length - 1; i >= 0; i--) {
      if (waiters[i]!.seq <= applied) waiters.splice(i, 1)[0]!.resolve();
    }
  };
  const counted = eventsApplied("projector");
  const unwatch = projectionLags.watch(() => projectionLag(nats, applied));
  const loop = (async () => {
    for await (const { seq, event, caughtUp } of follow) {
      const earlier = event && fold.needsHistory(event) ? (await foldRun(nats, event.runId, seq, log)).state : undefined;
      fold.apply(seq, event, earlier);
      countEvent(counted, event);
      batchSince ??= Date.now();
      live ||= caughtUp;
      // Caught up with a live log, events come a few at a time: gather them for a moment rather than
      // writing a transaction for each few (a wide map's outcomes then cost one write per instance).
      // A live projector that falls behind still writes every second; one rebuilding writes by size.
      if (fold.uncommitted >= batchSize || (live && Date.now() - batchSince >= LIVE_BATCH_MS)) flush();
      else if (caughtUp) flushTimer ??= setTimeout(flush, flushMs);
    }
    flush();
  })().catch((err) => log.fatal({ err }, "projector loop died"));

  log.info({ dbPath: options.dbPath, from: applied + 1 }, "projector started");
  return {
    model,
    waitFor(seq) {
      if (seq <= applied) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ seq, resolve }));
    },
    async stop() {
      unwatch();
      await follow.stop();
      await loop;
      clearTimeout(flushTimer); // the loop may have died with a write pending
      model.close();
    },
  };
}

/**
 * How far a read model that has applied the log up to `applied` is behind
 * it: the events after that sequence, and the age of the first of them.
 * Two JetStream requests; asked on a metrics scrape, never per event.
 */
export async function projectionLag(nats: Nats, applied: number, now = Date.now()): Promise<ProjectionLag> {
  const last = (await nats.jsm.streams.info(STREAMS.events)).state.last_seq;
  if (last <= applied) return { events: 0, seconds: 0 };
  // The server's STREAM.MSG.GET takes `next_by_subj` with `seq` (the first message at or after it); the client's type lists only the other forms.
  const next = await nats.jsm.streams.getMessage(STREAMS.events, { seq: applied + 1, next_by_subj: subjects.allEvents } as unknown as { seq: number });
  return { events: last - applied, seconds: next ? Math.max(0, (now - next.time.getTime()) / 1000) : 0 };
}
