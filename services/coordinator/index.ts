/**
 * The coordinator: folds the run events of the log, decides what becomes
 * ready, appends those decisions (fenced on the run's coordinator subject)
 * and publishes the work they call for. It never runs user code.
 */
import { JetStreamApiError } from "@nats-io/jetstream";
import { decide, evolve, pendingWork, workFor, type RunState, type WorkItem } from "../../libs/core/index.ts";
import { isRunEvent } from "../../libs/events/index.ts";
import { STREAMS, subjects } from "../../libs/names/index.ts";
import { appendEvent, followEvents, publishWork, type Nats } from "../../libs/nats/index.ts";
import type { Logger } from "../../libs/log/index.ts";

export type CoordinatorOptions = { nats: Nats; log: Logger; now?: () => number; tickMs?: number };
export type Coordinator = { stop(): Promise<void> };

/** What the coordinator keeps per active run. */
type Book = {
  state: RunState;
  /** Sequence of the last event on this run's coordinator subject: the fence for the next append. */
  coordSeq: number;
  /** Our appends not yet seen coming back through the log; no new decision until they are. */
  inFlight: Set<number>;
};

const BATCH = 500;

export async function startCoordinator(options: CoordinatorOptions): Promise<Coordinator> {
  const { nats, log } = options;
  const now = options.now ?? Date.now;
  const books = new Map<string, Book>();
  const dirty = new Set<string>();
  let caughtUp = false;
  let stopping = false;
  let chain: Promise<void> = Promise.resolve();

  /** Decides and appends for one run; returns the work the appended events call for. */
  async function decideRun(runId: string, book: Book): Promise<WorkItem[]> {
    const work: WorkItem[] = [];
    for (const event of decide(book.state, now())) {
      try {
        const ack = await appendEvent(nats.js, event, { expectLastSubjectSeq: book.coordSeq });
        book.coordSeq = ack.seq;
        book.inFlight.add(ack.seq);
        work.push(...workFor(book.state, event));
      } catch (err) {
        if (err instanceof JetStreamApiError && err.code === 10071) {
          // Someone else wrote this run's decisions since we last looked: fold them, then decide again.
          log.warn({ runId, expected: book.coordSeq }, "coordinator fence refused an append; waiting for the log to catch up");
        } else {
          log.error({ runId, err }, "append failed; will retry");
          dirty.add(runId);
        }
        break;
      }
    }
    return work;
  }

  async function flush(): Promise<void> {
    if (!caughtUp) return;
    const runIds = [...dirty].filter((id) => books.get(id)?.inFlight.size === 0);
    for (const id of runIds) dirty.delete(id);
    const work = (await Promise.all(runIds.map((id) => decideRun(id, books.get(id)!)))).flat();
    await publishWithRetry(work);
  }

  async function publishWithRetry(work: WorkItem[]): Promise<void> {
    for (let attempt = 0; work.length > 0 && !stopping; attempt++) {
      try {
        await publishWork(nats.js, work);
        return;
      } catch (err) {
        log.error({ err, items: work.length, attempt }, "publishing work failed; retrying");
        await new Promise((r) => setTimeout(r, Math.min(5000, 100 * 2 ** attempt)));
      }
    }
  }

  /** Serialises flushes from the event loop and the timer. */
  function schedule(fn: () => Promise<void>): Promise<void> {
    chain = chain.then(fn).catch((err) => log.error({ err }, "coordinator step failed"));
    return chain;
  }

  /** After a restart we cannot know which publishes landed: queue every open instance's work again (deduplicated by id). */
  async function resume(): Promise<void> {
    const work = [...books.values()].flatMap((b) => pendingWork(b.state));
    if (work.length) log.info({ items: work.length, runs: books.size }, "re-publishing open work after start");
    await publishWithRetry(work);
  }

  // Caught up once the log's last run event (as it stood at start) has been folded.
  const last = await nats.jsm.streams.getMessage(STREAMS.events, { last_by_subj: subjects.allRuns });
  const target = last?.seq ?? 0;
  caughtUp = target === 0;
  const follow = await followEvents(nats.js, subjects.allRuns, 1, (seq, err) => log.error({ seq, err }, "skipping an event that cannot be decoded"));
  const loop = (async () => {
    let sinceFlush = 0;
    for await (const logged of follow) {
      const { event, seq, subject } = logged;
      if (isRunEvent(event)) {
        let book = books.get(event.runId);
        const state = evolve(book?.state, event);
        if (state && !book) {
          book = { state, coordSeq: 0, inFlight: new Set() };
          books.set(event.runId, book);
        }
        if (book) {
          if (subject === subjects.coordinator(event.runId)) {
            book.coordSeq = Math.max(book.coordSeq, seq);
            book.inFlight.delete(seq);
          }
          if (book.state.state !== "running") books.delete(event.runId);
          else dirty.add(event.runId);
        }
      }
      if (!caughtUp && seq >= target) {
        caughtUp = true;
        await schedule(resume);
      }
      if (logged.caughtUp || ++sinceFlush >= BATCH) {
        sinceFlush = 0;
        await schedule(flush);
      }
    }
  })().catch((err) => {
    if (!stopping) log.fatal({ err }, "coordinator event loop died");
  });

  // Retries appends that failed while nothing else arrives.
  const tick = setInterval(() => {
    if (dirty.size) void schedule(flush);
  }, options.tickMs ?? 1000);

  log.info("coordinator started");
  return {
    async stop() {
      stopping = true;
      clearInterval(tick);
      await follow.stop();
      await loop;
      await chain;
    },
  };
}
