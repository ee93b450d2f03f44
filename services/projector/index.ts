/**
 * The projector: folds the whole log into the SQLite read model with the
 * same `evolve` as the coordinator, a batch of events and its checkpoint per
 * transaction. After a restart it resumes from the stored sequence; the run
 * states it no longer holds are folded again from that run's own events.
 */
import { evolve, FINISHED_RUN_STATES, type RunState } from "../../libs/core/index.ts";
import { isOperatorEvent, type RunEvent } from "../../libs/events/index.ts";
import { subjects } from "../../libs/names/index.ts";
import { foldRun, followEvents, logBadEvent, type Follow, type Nats } from "../../libs/nats/index.ts";
import { emptyTouched, ReadModel, type Touched } from "../../libs/store/index.ts";
import type { Logger } from "../../libs/log/index.ts";

export type ProjectorOptions = {
  nats: Nats;
  log: Logger;
  dbPath: string;
  /** Events per transaction at most (default 50,000: a replay writes each instance once per batch). */
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

function touchTask(touched: Touched, runId: string, taskId: string): void {
  const set = touched.tasks.get(runId);
  if (set) set.add(taskId);
  else touched.tasks.set(runId, new Set([taskId]));
}

function touchInstance(touched: Touched, runId: string, taskId: string, mapIndex: number | "all"): void {
  const key = `${runId}\0${taskId}`;
  const current = touched.instances.get(key);
  if (mapIndex === "all" || current === "all") touched.instances.set(key, "all");
  else if (current) current.add(mapIndex);
  else touched.instances.set(key, new Set([mapIndex]));
}

// Helpers at module level, not closures: this runs once per event, and a replay folds hundreds of thousands.
function touch(touched: Touched, event: RunEvent, runs: ReadonlyMap<string, RunState>): void {
  const runId = event.runId;
  switch (event.type) {
    case "RunRequested":
      touched.runs.add(runId);
      for (const t of event.spec.tasks) touchTask(touched, runId, t.id);
      return;
    case "RunCancelRequested":
      touched.runs.add(runId);
      return;
    case "RunFinished":
      touched.runs.add(runId);
      if (event.state !== "cancelled") return; // a run that finished by itself changed no task on the way
    // falls through: a cancel stops every unfinished task
    case "RunTimedOut":
    case "ClearRequested":
      // These can change every unfinished (or, for a clear, finished) task of the run.
      touched.runs.add(runId);
      for (const id of Object.keys(runs.get(runId)?.tasks ?? {})) {
        touchTask(touched, runId, id);
        touchInstance(touched, runId, id, "all");
      }
      return;
    case "InstanceMarked":
      touched.runs.add(runId);
      touchTask(touched, runId, event.taskId);
      touchInstance(touched, runId, event.taskId, event.mapIndex);
      return;
    case "InstancesRerun":
      touchTask(touched, runId, event.taskId);
      for (const i of [...event.mapIndexes, ...(event.settled ?? []).map(([i]) => i)]) touchInstance(touched, runId, event.taskId, i);
      return;
    case "TaskExpanded":
    case "TaskScheduled":
      touchTask(touched, runId, event.taskId);
      touchInstance(touched, runId, event.taskId, "all");
      return;
    case "TaskSkipped":
    case "TaskFailed":
      touchTask(touched, runId, event.taskId);
      return;
    case "InstanceStarted":
    case "InstanceSucceeded":
    case "InstanceFailed":
    case "InstanceRetried":
      touchTask(touched, runId, event.taskId);
      touchInstance(touched, runId, event.taskId, event.mapIndex);
      return;
    case "InstancesQueued":
      touchTask(touched, runId, event.taskId);
      for (const i of event.mapIndexes) touchInstance(touched, runId, event.taskId, i);
      return;
    default: {
      const unknown: never = event;
      throw new Error(`projector: unhandled event ${JSON.stringify(unknown)}`);
    }
  }
}

export async function startProjector(options: ProjectorOptions): Promise<Projector> {
  const { nats, log } = options;
  const batchSize = options.batchSize ?? 50_000;
  const flushMs = options.flushMs ?? 20;
  const model = new ReadModel(options.dbPath);
  const runs = new Map<string, RunState>();
  let applied = model.lastSeq();
  const waiters: { seq: number; resolve: () => void }[] = [];

  let follow: Follow;
  try {
    follow = await followEvents(nats.js, subjects.allEvents, applied + 1, logBadEvent(log));
  } catch (err) {
    model.close(); // a start that is tried again opens its own
    throw err;
  }
  let touched = emptyTouched();
  let pending = 0;
  let lastApplied = applied;
  let flushTimer: NodeJS.Timeout | undefined;
  /** Writes what the folded events changed, and the checkpoint, in one transaction. */
  const flush = () => {
    clearTimeout(flushTimer);
    flushTimer = undefined;
    if (pending === 0) return;
    model.commit(lastApplied, touched, runs);
    applied = lastApplied;
    for (const [runId, state] of runs) {
      if (FINISHED_RUN_STATES.has(state.state)) runs.delete(runId);
    }
    touched = emptyTouched();
    pending = 0;
    for (let i = waiters.length - 1; i >= 0; i--) {
      if (waiters[i]!.seq <= applied) waiters.splice(i, 1)[0]!.resolve();
    }
  };
  const loop = (async () => {
    for await (const { seq, event, caughtUp } of follow) {
      if (!event) {
        // skipped (reported by onBadEvent); the checkpoint still moves past it
      } else if (event.type === "DagRegistered") {
        touched.dags.set(event.dagId, event);
      } else {
        let state = runs.get(event.runId);
        // A late duplicate for a run already written as finished changes nothing; an operator's request (a clear) does.
        if (!state && event.type !== "RunRequested" && (isOperatorEvent(event) || !model.isFinished(event.runId))) {
          state = (await foldRun(nats, event.runId, seq, log)).state;
        }
        state = evolve(state, event);
        if (state) {
          runs.set(event.runId, state);
          touch(touched, event, runs);
          touched.seqs.set(event.runId, seq);
        }
      }
      lastApplied = seq;
      pending++;
      // Caught up with a live log, events come a few at a time: gather them for a moment rather than
      // writing a transaction for each few (a wide map's outcomes then cost one write per instance).
      if (pending >= batchSize) flush();
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
      await follow.stop();
      await loop;
      clearTimeout(flushTimer); // the loop may have died with a write pending
      model.close();
    },
  };
}
