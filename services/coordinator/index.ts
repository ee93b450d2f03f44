/**
 * The coordinator: folds the run events of the log, decides what becomes
 * ready, appends those decisions (fenced on the run's coordinator subject)
 * and publishes the work they call for. It never runs user code.
 *
 * It also requests the runs DAG schedules call for (scheduler.ts), once it
 * has caught up with the log.
 *
 * Work is published when a decision comes back through the log, not when
 * its append is acknowledged: an append whose reply was lost still lands in
 * the log, and so still gets its work. Work message ids make repeats harmless.
 */
import { JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";
import { activeInstances, decide, DEFAULT_MAX_MAP_LENGTH, evolve, FINISHED_RUN_STATES, pendingWork, taskSpec, workStream, DECIDING, type DecideSettings, type RunState, type WorkItem } from "../../libs/core/index.ts";
import { BadInputError } from "../../libs/errors.ts";
import { isOperatorEvent, isOutcomeEvent, isRunEvent, type CoordinatorEvent, type MapflowEvent, type RunEvent } from "../../libs/events/index.ts";
import { msgIds, STREAMS, subjects } from "../../libs/names/index.ts";
import { appendEvent, foldRun, followEvents, logBadEvent, maxValueBytes, publishWork, valueStore, type Nats, type Oversized } from "../../libs/nats/index.ts";
import type { Logger } from "../../libs/log/index.ts";
import { countEvent, eventsApplied, instanceRetries } from "../../libs/metrics/index.ts";
import { watchDeadLetters } from "./deadletter.ts";
import { restore, saveSnapshot, snapshotBucket } from "./snapshot.ts";
import { storedValues } from "./stored.ts";
import { watchWorkQueues } from "./queues.ts";
import { startScheduler } from "./scheduler.ts";

export type CoordinatorOptions = {
  nats: Nats;
  log: Logger;
  now?: () => number;
  tickMs?: number;
  /** Global limit on one task's instances, for tasks that set none; default MAPFLOW_MAX_MAP_LENGTH, else 100,000. */
  maxMapLength?: number;
  /** How often the snapshot (log position and active runs) is written, so a restart reads only active runs. */
  snapshotEveryMs?: number;
  /** The hard limit on one work item; default MAPFLOW_MAX_VALUE_BYTES, else 64 MB. */
  maxValueBytes?: number;
  /** Request the runs DAG schedules call for (default true; `mapflow run`'s one-shot stack runs only what it was asked). */
  scheduling?: boolean;
};
export type Coordinator = {
  /** Events read before the coordinator caught up: the active runs' (from a snapshot) plus the log after it. */
  foldedAtStart(): number;
  stop(): Promise<void>;
};

/** What the coordinator keeps per active run. */
type Book = {
  state: RunState;
  /** Last sequence seen on this run's coordinator subject, through the log. */
  seenSeq: number;
  /** Last sequence our own appends got; no new decision until the log has shown it. */
  appendedSeq: number;
};

const BATCH = 500;

/** The global maxMapLength: the option, else MAPFLOW_MAX_MAP_LENGTH, else the default. */
export function globalMaxMapLength(option?: number, env = process.env["MAPFLOW_MAX_MAP_LENGTH"]): number {
  const raw = option ?? (env === undefined || env === "" ? DEFAULT_MAX_MAP_LENGTH : Number(env));
  if (!Number.isInteger(raw) || raw < 1) {
    throw new BadInputError(`the global maxMapLength must be a whole number ≥ 1, got '${option ?? env}'; fix --max-map-length or MAPFLOW_MAX_MAP_LENGTH`);
  }
  return raw;
}

/** Work sent again (see WorkItem.again): some of it may have run already. */
function* publishedAgain(items: Iterable<WorkItem>): Generator<WorkItem> {
  for (const item of items) yield { ...item, again: true };
}

export async function startCoordinator(options: CoordinatorOptions): Promise<Coordinator> {
  const { nats, log } = options;
  const now = options.now ?? Date.now;
  const maxWorkBytes = options.maxValueBytes ?? maxValueBytes();
  const stored = storedValues(nats, log, () => !stopping);
  /** Work still to publish: each entry makes its items when read, and again if publishing must start over. */
  type Outbox = (() => Iterable<WorkItem>)[];
  /** Slots given out by decisions not yet folded back, per run and `dag/task`: they count toward maxActive meanwhile. */
  const reserved = new Map<string, Map<string, number>>();
  const slotKey = (dagId: string, taskId: string) => `${dagId}/${taskId}`;
  const settings: DecideSettings = {
    maxMapLength: globalMaxMapLength(options.maxMapLength),
    activeAcrossRuns(dagId, taskId) {
      const key = slotKey(dagId, taskId);
      let active = 0;
      for (const book of books.values()) {
        const task = book.state.dagId === dagId ? book.state.tasks[taskId] : undefined;
        if (task) active += activeInstances(task);
      }
      for (const held of reserved.values()) active += held.get(key) ?? 0;
      return active;
    },
  };

  function reserve(book: Book, events: readonly CoordinatorEvent[]): void {
    for (const event of events) {
      if (event.type !== "InstancesQueued") continue;
      const held = reserved.get(book.state.runId) ?? new Map<string, number>();
      const key = slotKey(book.state.dagId, event.taskId);
      held.set(key, (held.get(key) ?? 0) + event.mapIndexes.length);
      reserved.set(book.state.runId, held);
    }
  }

  /** A queued decision came back through the log: its instances now count in the run's state instead. */
  function release(state: RunState, taskId: string, count: number): void {
    const held = reserved.get(state.runId);
    const key = slotKey(state.dagId, taskId);
    const left = (held?.get(key) ?? 0) - count;
    if (left > 0) held!.set(key, left);
    else held?.delete(key);
  }

  /** A slot freed under maxActive may let another run of the same DAG go on. */
  function wakeSiblings(state: RunState, event: MapflowEvent): void {
    const frees = isOutcomeEvent(event) || event.type === "InstanceMarked"
      ? taskSpec(state.spec, event.taskId).options.maxActive !== null
      : (event.type === "RunFinished" || event.type === "RunTimedOut") && state.spec.tasks.some((t) => t.options.maxActive !== null);
    if (!frees) return;
    for (const [runId, book] of books) if (book.state.dagId === state.dagId && runId !== state.runId) dirty.add(runId);
  }
  const books = new Map<string, Book>();
  const dirty = new Set<string>();
  let caughtUp = false;
  let stopping = false;
  let chain: Promise<void> = Promise.resolve();

  /** Appends one run's decisions, each fenced on the sequence the one before it got. */
  async function decideRun(runId: string, book: Book): Promise<void> {
    // Decided and reserved before the first await, so runs decided together see each other's slots.
    const events = decide(book.state, now(), settings);
    reserve(book, events);
    for (const [n, event] of events.entries()) {
      const fence = Math.max(book.seenSeq, book.appendedSeq);
      try {
        const ack = await appendEvent(nats, event, { expectLastSubjectSeq: fence });
        book.appendedSeq = ack.seq;
        if (event.type === "InstanceRetried") instanceRetries.add(book.state.dagId, event.taskId);
      } catch (err) {
        if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamWrongLastSequence) {
          log.warn({ runId, fence }, "the fence refused an append: another writer decided this run; folding its events first");
        } else {
          log.error({ runId, err }, "append failed; will decide this run again");
        }
        // This decision and the ones after it were not appended: their slots were never taken.
        for (const unsent of events.slice(n)) if (unsent.type === "InstancesQueued") release(book.state, unsent.taskId, unsent.mapIndexes.length);
        dirty.add(runId);
        return;
      }
    }
  }

  async function flush(): Promise<void> {
    if (!caughtUp) return;
    const ready = [...dirty].filter((id) => {
      const book = books.get(id);
      return book !== undefined && book.appendedSeq <= book.seenSeq;
    });
    for (const id of ready) dirty.delete(id);
    await Promise.all(ready.map((id) => decideRun(id, books.get(id)!).catch((err) => log.error({ runId: id, err }, "deciding a run failed"))));
  }

  /**
   * Each entry's work; one that cannot be built (its stored input is unreadable) is reported, not retried with the rest.
   * `again`: a publish being retried, some of whose work may have gone out and run already.
   */
  function* buildAll(work: Outbox, again: boolean): Generator<WorkItem> {
    for (const make of work) {
      try {
        yield* again ? publishedAgain(make()) : make();
      } catch (err) {
        log.error({ err }, "could not build work for a decision; its instances stay queued until cleared");
      }
    }
  }

  let fullSince = 0;
  async function publish(work: Outbox): Promise<void> {
    for (let attempt = 0; work.length > 0 && !stopping; attempt++) {
      try {
        const oversized = await publishWork(nats, buildAll(work, attempt > 0), {
          maxBytes: maxWorkBytes,
          store: stored.bucket,
          stopped: () => stopping,
          onFull: () => {
            if (Date.now() - fullSince < 10_000) return;
            fullSince = Date.now();
            log.warn("the work stream is full (its limits refuse new work): waiting for workers to take some before publishing more");
          },
        });
        await Promise.all(oversized.map(failOversized));
        return;
      } catch (err) {
        log.error({ err, attempt }, "publishing work failed; retrying");
        await new Promise((r) => setTimeout(r, Math.min(5000, 100 * 2 ** attempt)));
      }
    }
  }

  /**
   * Work waiting to be published, in decision order, and the one publisher
   * draining it. The fold loop only queues: it never waits for a wide
   * expansion's work to go out (or for a full work stream to drain), so it
   * keeps folding outcomes and deciding meanwhile instead of piling up a
   * backlog. Safe to build late: work is made from the state when it is
   * sent, an instance finished meanwhile needs none, and message ids make a
   * repeat harmless.
   */
  const unsent: Outbox = [];
  let sending: Promise<void> | null = null;
  function send(work: Outbox): void {
    if (work.length === 0 || stopping) return;
    unsent.push(...work);
    sending ??= drain();
  }
  async function drain(): Promise<void> {
    try {
      while (unsent.length > 0 && !stopping) await publish(unsent.splice(0));
    } finally {
      sending = null; // in the same step as the last check: nothing queued meanwhile is left behind
    }
  }

  /** Inputs too large for even the object store's limit fail their instance, saying the size and the limit (retrying cannot help). */
  async function failOversized({ item, bytes }: Oversized): Promise<void> {
    const message = `the inputs of task '${item.taskId}' map index ${item.mapIndex} are ${bytes} bytes, over the ${maxWorkBytes}-byte limit for a work item (MAPFLOW_MAX_VALUE_BYTES); ` +
      "pass large data by reference (a path or URL) instead of through task results";
    const at = now();
    await appendEvent(nats, {
      type: "InstanceFailed", runId: item.runId, taskId: item.taskId, mapIndex: item.mapIndex, try: item.try,
      worker: "coordinator", error: { name: "InputTooLarge", message }, noRetry: true, startedAt: at, at,
    }, { msgId: msgIds.instance(item.runId, item.taskId, item.mapIndex, item.try) });
  }

  /** Serialises flushes from the event loop and the timer. */
  function schedule(fn: () => Promise<void>): Promise<void> {
    chain = chain.then(fn).catch((err) => log.error({ err }, "coordinator step failed"));
    return chain;
  }

  /** After a start we cannot know which publishes landed: queue every open instance's work again (deduplicated by id). */
  function resume(): void {
    const states = [...books.values()].map((b) => b.state);
    if (states.length) log.info({ runs: states.length }, "re-publishing open work after start");
    send(states.map((state) => () => publishedAgain(pendingWork(state))));
  }

  /**
   * An operator's request for a run this coordinator no longer holds (a
   * clear of a finished run): fold the run again from the log first.
   */
  function needsRecall(event: MapflowEvent | null): event is MapflowEvent & { runId: string } {
    return event !== null && isOperatorEvent(event) && event.type !== "RunRequested" && !books.has(event.runId);
  }

  async function recall(seq: number, event: MapflowEvent & { runId: string }): Promise<void> {
    const { state, coordSeq } = await foldRun(nats, event.runId, seq, log, DECIDING);
    if (!state) return;
    await stored.attachAll(state);
    books.set(event.runId, { state, seenSeq: coordSeq, appendedSeq: 0 });
  }

  /** A run that ends with work still out: drop its queued work and tell workers to stop its running tries. */
  async function stopWork(runId: string): Promise<void> {
    try {
      await nats.jsm.streams.purge(STREAMS.work, { filter: subjects.runWork(runId) });
      nats.nc.publish(subjects.runStop(runId));
    } catch (err) {
      log.warn({ err, runId }, "could not drop the stopped run's work; workers will still not record it");
    }
  }

  /** Folds one delivered message; once the history is folded, a decision's work goes to `outbox`. */
  function fold(seq: number, subject: string, event: MapflowEvent | null, outbox: Outbox): void {
    if (!event) {
      // Even a malformed message moves the fence of the run whose coordinator subject it sits on.
      const book = books.get(subjects.runOfCoordinator(subject) ?? "");
      if (book) book.seenSeq = Math.max(book.seenSeq, seq);
      return;
    }
    if (!isRunEvent(event)) return;
    if (event.type === "RunRequested") scheduler.observe(event);
    let book = books.get(event.runId);
    const state = evolve(book?.state, event, DECIDING);
    if (!state) return;
    if (!book) {
      book = { state, seenSeq: 0, appendedSeq: 0 };
      books.set(event.runId, book);
    }
    wakeSiblings(book.state, event);
    if (subject === subjects.coordinator(event.runId)) {
      book.seenSeq = Math.max(book.seenSeq, seq);
      if (event.type === "InstancesQueued") release(book.state, event.taskId, event.mapIndexes.length);
      if (caughtUp) outbox.push(workOf(book.state, event));
    } else if (caughtUp && event.type === "ClearRequested") {
      outbox.push(workOf(book.state, event));
    }
    // Only these end a run with work still out (a failed run's tasks had all finished).
    if (caughtUp && (event.type === "RunTimedOut" || (event.type === "RunFinished" && event.state === "cancelled"))) void stopWork(event.runId);
    if (FINISHED_RUN_STATES.has(book.state.state)) {
      books.delete(event.runId);
      reserved.delete(event.runId);
      dirty.delete(event.runId);
    } else {
      dirty.add(event.runId);
    }
  }

  const workOf = (state: RunState, event: RunEvent) => () => workStream(state, event);

  // Start from the snapshot: its active runs, folded from their own subjects, then the log after it.
  const snapshots = await snapshotBucket(nats);
  const restored = await restore(nats, snapshots, log);
  for (const [runId, { state, coordSeq }] of restored.runs) {
    if (FINISHED_RUN_STATES.has(state.state)) continue;
    await stored.attachAll(state);
    books.set(runId, { state, seenSeq: coordSeq, appendedSeq: 0 });
    dirty.add(runId);
  }
  let folded = restored.folded;
  let position = restored.seq;
  // Caught up once the log's last run event (as it stood at start) has been folded.
  const last = await nats.jsm.streams.getMessage(STREAMS.events, { last_by_subj: subjects.allRuns });
  const target = last?.seq ?? 0;
  caughtUp = target <= position;
  if (caughtUp) resume();
  const snapshotEveryMs = options.snapshotEveryMs ?? 2000;
  let snapshotAt = Date.now();
  async function snapshot(): Promise<void> {
    if (Date.now() - snapshotAt < snapshotEveryMs) return;
    snapshotAt = Date.now();
    await saveSnapshot(snapshots, { seq: position, runs: [...books.keys()], scheduled: scheduler.cursors() }).catch((err) => log.warn({ err }, "could not save the coordinator snapshot"));
  }

  // Before the reader and the loop: a failure here leaves nothing running behind a start that is retried.
  const deadLetters = await watchDeadLetters(nats, log, () => !stopping, now);
  const scheduler = await startScheduler({
    nats, log, now, cursors: restored.scheduled, enabled: options.scheduling !== false,
    activeRuns(dagId) {
      let active = 0;
      for (const book of books.values()) if (book.state.dagId === dagId) active++;
      return active;
    },
  });
  const follow = await followEvents(nats.js, subjects.allRuns, position + 1, logBadEvent(log)).catch(async (err: unknown) => {
    await scheduler.stop();
    throw err;
  });
  const applied = eventsApplied("coordinator");
  const loop = (async () => {
    let sinceFlush = 0;
    // Work of the decisions folded in this batch, published together at its end.
    let outbox: Outbox = [];
    for await (const { seq, subject, event, caughtUp: noneNewer } of follow) {
      // Rare: most events need no I/O before their fold.
      if (needsRecall(event)) await recall(seq, event);
      if (event?.type === "InstanceSucceeded" || event?.type === "InstancesFinished") await stored.attachResults(books.get(event.runId)?.state, event);
      fold(seq, subject, event, outbox);
      countEvent(applied, event);
      position = seq;
      if (!caughtUp) {
        folded++;
        if (seq >= target) {
          caughtUp = true;
          log.info({ folded, activeRuns: books.size }, "caught up with the log");
          resume();
        }
      }
      if (noneNewer || ++sinceFlush >= BATCH) {
        sinceFlush = 0;
        send(outbox);
        outbox = [];
        await schedule(flush);
        if (caughtUp) await snapshot();
      }
    }
  })().catch((err) => {
    if (!stopping) log.fatal({ err }, "coordinator event loop died");
  });

  // Decides again for runs whose append failed, while nothing else arrives.
  const tick = setInterval(() => {
    // A run past its runTimeoutMs is decided again even if nothing arrives for it.
    for (const [runId, book] of books) {
      const timeout = book.state.spec.runTimeoutMs;
      if (timeout !== null && !book.state.timedOut && now() >= book.state.startedAt + timeout) dirty.add(runId);
    }
    if (dirty.size) void schedule(flush);
    // Scheduling waits for the fold: the runs already requested, and those still unfinished, are known only then.
    if (caughtUp) void schedule(() => scheduler.tick());
  }, options.tickMs ?? 1000);

  const queues = watchWorkQueues(nats, log);
  log.info("coordinator started");
  return {
    foldedAtStart: () => folded,
    async stop() {
      stopping = true;
      await deadLetters.stop();
      queues.stop();
      clearInterval(tick);
      await scheduler.stop();
      await follow.stop();
      await loop;
      await chain;
      await sending; // stops between items: what it did not send, the next start sends (resume)
      if (caughtUp) {
        snapshotAt = 0; // a clean stop leaves a fresh snapshot for the next start
        await snapshot();
      }
    },
  };
}
