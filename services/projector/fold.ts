/**
 * Folding events into the read model, shared by the live projector and by
 * `mapflow replay`: each event is folded with `evolve` into the run's state,
 * the rows it changed are noted, and `commit` writes those rows and the
 * checkpoint in one transaction.
 */
import { evolve, FINISHED_RUN_STATES, type RunState } from "../../libs/core/index.ts";
import { eventsIn, isOperatorEvent, isRunEvent, type MapflowEvent, type RunEvent } from "../../libs/events/index.ts";
import { emptyTouched, taskKey, type ReadModel, type Touched } from "../../libs/store/index.ts";

function touchTask(touched: Touched, runId: string, taskId: string): void {
  const set = touched.tasks.get(runId);
  if (set) set.add(taskId);
  else touched.tasks.set(runId, new Set([taskId]));
}

function touchInstance(touched: Touched, runId: string, taskId: string, mapIndex: number | "all"): void {
  const key = taskKey(runId, taskId);
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
    case "InstancesFinished":
      touchTask(touched, runId, event.taskId);
      for (const o of event.outcomes) touchInstance(touched, runId, event.taskId, o.mapIndex);
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

/**
 * Events per transaction at most while catching up (a replay, a projector far behind). Each row a
 * batch touches is written once at its commit, so fewer, larger batches write each instance of a
 * wide map fewer times (its expansion and its outcome in one write, not two); 250,000 events hold
 * a few MiB of touched keys.
 */
export const EVENTS_PER_COMMIT = 250_000;

export class ProjectionFold {
  /** States of the runs folded and not yet finished (a finished run's rows are final). */
  private readonly runs = new Map<string, RunState>();
  private touched: Touched = emptyTouched();
  private pending = 0;
  private last: number;

  /**
   * `keepFinished`: hold finished runs too. A replay has no log to fold a
   * run again from when a clear reopens it later (an archive), so it keeps
   * every run; the live projector drops them and folds one again if needed.
   */
  constructor(readonly model: ReadModel, private readonly options: { keepFinished?: boolean } = {}) {
    this.last = model.lastSeq();
  }

  /** The state of a run folded so far (for a run still held). */
  stateOf(runId: string): RunState | undefined {
    return this.runs.get(runId);
  }

  /** Events folded since the last commit, an InstancesFinished counted as its outcomes. */
  get uncommitted(): number {
    return this.pending;
  }

  /**
   * Whether folding this event needs the run's earlier events first: the run is not held (the
   * projector restarted), and it is not a late duplicate for a run already written as finished
   * (which changes nothing) — an operator's request (a clear) on a finished run does need them.
   */
  needsHistory(event: MapflowEvent): event is RunEvent {
    return isRunEvent(event) && event.type !== "RunRequested" && !this.runs.has(event.runId) &&
      (isOperatorEvent(event) || !this.model.isFinished(event.runId));
  }

  /** Folds one event; null for a message that was skipped (the checkpoint still moves past it). `earlier`: the run's state folded from the log. */
  apply(seq: number, event: MapflowEvent | null, earlier?: RunState): void {
    if (event?.type === "DagRegistered") {
      this.touched.dags.set(event.dagId, event);
    } else if (event?.type === "DagPaused") {
      this.touched.pauses.set(event.dagId, event.paused);
    } else if (event?.type === "RunsPurged") {
      for (const runId of event.runIds) {
        this.runs.delete(runId);
        this.touched.purged.add(runId);
      }
    } else if (event) {
      const held = this.runs.get(event.runId) ?? earlier;
      const was = held?.state; // evolve changes the state in place
      const state = evolve(held, event);
      if (state) {
        this.runs.set(event.runId, state);
        touch(this.touched, event, this.runs);
        // A queued run starts with its first task event, whichever: its row was written as queued
        // when its request was, and a commit between the two would otherwise leave it so.
        if (state.state !== was) this.touched.runs.add(event.runId);
        this.touched.seqs.set(event.runId, seq);
      }
    }
    this.last = seq;
    this.pending += eventsIn(event);
  }

  /** Writes what the folded events changed, and the checkpoint, in one transaction; returns the checkpoint. */
  commit(): number {
    if (this.pending === 0) return this.last;
    this.model.commit(this.last, this.touched, this.runs);
    if (!this.options.keepFinished) {
      for (const [runId, state] of this.runs) {
        if (FINISHED_RUN_STATES.has(state.state)) this.runs.delete(runId);
      }
    }
    this.touched = emptyTouched();
    this.pending = 0;
    return this.last;
  }
}
