/**
 * The SQLite read model: rows written from folded run state. The projector
 * writes a batch of events and its checkpoint (the last applied stream
 * sequence) in one transaction, so a crash never leaves half a batch.
 */
import Database from "better-sqlite3";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import type { DagRegistered } from "../events/index.ts";
import { FINISHED_RUN_STATES, TERMINAL_TASK_STATES, type Instance, type RunState, type RunStateName, type TaskRun } from "../core/state.ts";
import { SCHEMA, STORE_VERSION, TABLES } from "./schema.ts";
import { countByState, StateTallies } from "./tally.ts";

/** Rows to rewrite from state after a batch, named by what the batch touched. */
export type Touched = {
  dags: Map<string, DagRegistered>;
  /** dagId → paused, the last DagPaused of the batch (written after the registrations). */
  pauses: Map<string, boolean>;
  runs: Set<string>;
  /** runId → taskIds */
  tasks: Map<string, Set<string>>;
  /** taskKey(runId, taskId) → map indexes, or "all" after an expansion */
  instances: Map<string, Set<number> | "all">;
  /** runId → the sequence of the last event that changed the run (the same however the log is batched). */
  seqs: Map<string, number>;
  /** Runs `db clean` removed from the log: their rows go. */
  purged: Set<string>;
};

/** The key of a task in `Touched.instances`: one string, so a batch's touches of it gather in one entry. */
export function taskKey(runId: string, taskId: string): string {
  return `${runId}\0${taskId}`;
}

function taskOfKey(key: string): [runId: string, taskId: string] {
  return key.split("\0") as [string, string];
}

export function emptyTouched(): Touched {
  return { dags: new Map(), pauses: new Map(), runs: new Set(), tasks: new Map(), instances: new Map(), seqs: new Map(), purged: new Set() };
}

/** Map indexes in key order: rows written in the order the table keeps them touch each page once, not once per row. */
function inOrder(mapIndexes: Set<number>): number[] {
  return [...mapIndexes].sort((a, b) => a - b);
}

function json(value: unknown): string | null {
  return value === undefined ? null : JSON.stringify(value);
}

export class ReadModel {
  readonly db: Database.Database;
  private readonly stmts;
  private readonly tallies = new StateTallies();

  constructor(path: string) {
    if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path);
    this.db.pragma("journal_mode = WAL");
    this.db.pragma("synchronous = NORMAL");
    if (this.db.pragma("user_version", { simple: true }) !== STORE_VERSION) {
      // An older read model: drop it; the projector refills it from the log, which is the truth.
      for (const table of TABLES) this.db.exec(`DROP TABLE IF EXISTS ${table}`);
      this.db.pragma(`user_version = ${STORE_VERSION}`);
    }
    this.db.exec(SCHEMA);
    this.stmts = {
      lastSeq: this.db.prepare<[], { last_seq: number }>("SELECT last_seq FROM projection WHERE id = 1"),
      runState: this.db.prepare<[string], { state: string }>("SELECT state FROM dag_runs WHERE run_id = ?"),
      setSeq: this.db.prepare("INSERT INTO projection (id, last_seq) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET last_seq = excluded.last_seq"),
      // A new version keeps the DAG's paused state: pausing is about the DAG, not one version of it.
      dag: this.db.prepare(
        "INSERT INTO dags (dag_id, version, spec, registered_at) VALUES (?, ?, ?, ?) " +
          "ON CONFLICT (dag_id) DO UPDATE SET version = excluded.version, spec = excluded.spec, registered_at = excluded.registered_at",
      ),
      // A pause of a DAG with no row changes nothing: the CLI and the API pause only registered DAGs.
      paused: this.db.prepare("UPDATE dags SET paused = ? WHERE dag_id = ?"),
      dagVersion: this.db.prepare("INSERT OR IGNORE INTO dag_versions (dag_id, version, spec) VALUES (?, ?, ?)"),
      run: this.db.prepare(
        "INSERT OR REPLACE INTO dag_runs (run_id, dag_id, dag_version, state, conf, started_at, ended_at, updated_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
      ),
      runUpdated: this.db.prepare("UPDATE dag_runs SET updated_seq = ? WHERE run_id = ?"),
      task: this.db.prepare(
        "INSERT OR REPLACE INTO tasks (run_id, task_id, state, mapped, map_count, counts, error, started_at, ended_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
      ),
      instance: this.db.prepare(
        "INSERT OR REPLACE INTO task_instances (run_id, task_id, map_index, state, tries, result, error, worker, label, group_index, started_at, ended_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
      ),
      dropInstances: this.db.prepare("DELETE FROM task_instances WHERE run_id = ? AND task_id = ?"),
      // Rows are only added: an instance's artifacts in its state only grow, so the rows are the same however batches fell.
      artifact: this.db.prepare(
        "INSERT OR IGNORE INTO artifacts (run_id, task_id, map_index, try, name, content_type, bytes, object) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
      ),
      dropRun: [
        this.db.prepare("DELETE FROM artifacts WHERE run_id = ?"),
        this.db.prepare("DELETE FROM task_instances WHERE run_id = ?"),
        this.db.prepare("DELETE FROM tasks WHERE run_id = ?"),
        this.db.prepare("DELETE FROM dag_runs WHERE run_id = ?"),
      ],
    };
  }

  lastSeq(): number {
    return this.stmts.lastSeq.get()?.last_seq ?? 0;
  }

  isFinished(runId: string): boolean {
    const row = this.stmts.runState.get(runId);
    return row !== undefined && FINISHED_RUN_STATES.has(row.state as RunStateName);
  }

  /** Writes the touched rows from the states and the checkpoint, atomically. */
  commit(lastSeq: number, touched: Touched, runs: ReadonlyMap<string, RunState>): void {
    try {
      this.write(lastSeq, touched, runs);
    } catch (err) {
      this.tallies.clear(); // they followed writes that were rolled back
      throw err;
    }
  }

  private write(lastSeq: number, touched: Touched, runs: ReadonlyMap<string, RunState>): void {
    this.db.transaction(() => {
      for (const d of touched.dags.values()) {
        const spec = JSON.stringify(d.spec);
        this.stmts.dag.run(d.dagId, d.version, spec, d.at);
        this.stmts.dagVersion.run(d.dagId, d.version, spec);
      }
      for (const [dagId, paused] of touched.pauses) this.stmts.paused.run(paused ? 1 : 0, dagId);
      for (const runId of touched.runs) {
        const r = runs.get(runId);
        if (!r) continue;
        this.stmts.run.run(r.runId, r.dagId, r.dagVersion, r.state, JSON.stringify(r.conf), r.startedAt, r.endedAt ?? null, touched.seqs.get(runId) ?? lastSeq);
        this.stmts.dagVersion.run(r.dagId, r.dagVersion, JSON.stringify(r.spec));
      }
      for (const [runId, seq] of touched.seqs) if (!touched.runs.has(runId)) this.stmts.runUpdated.run(seq, runId);
      for (const [key, which] of touched.instances) {
        const [runId, taskId] = taskOfKey(key);
        const task = runs.get(runId)?.tasks[taskId];
        const instances = task?.instances;
        const artifacts = (i: Instance) => {
          for (const a of i.artifacts ?? []) this.stmts.artifact.run(runId, taskId, i.mapIndex, a.try, a.name, a.contentType, a.bytes, a.object);
        };
        // A whole task written again (expanded, cleared, stopped) replaces its rows, so none outlive the state.
        if (which === "all") {
          this.stmts.dropInstances.run(runId, taskId);
          this.tallies.forget(runId, taskId);
        }
        if (!instances) {
          // Cleared whole and not expanded again yet: its earlier tries' artifacts are held in `previous`.
          task?.previous?.forEach(artifacts);
          continue;
        }
        const write = (i: Instance) => {
          this.stmts.instance.run(
            runId, taskId, i.mapIndex, i.state, i.try, json(i.result), i.error ? JSON.stringify(i.error) : null, i.worker ?? null,
            i.label ?? null, i.group ?? null, i.startedAt ?? null, i.endedAt ?? null,
          );
          if (i.artifacts) artifacts(i);
        };
        if (which === "all") instances.forEach(write);
        else for (const mapIndex of inOrder(which)) {
          const position = mapIndex < 0 ? 0 : mapIndex;
          const i = instances[position];
          if (!i) continue;
          write(i);
          this.tallies.written(runId, taskId, instances, position);
        }
      }
      // After the instances, whose writes keep the tallies the counts come from.
      for (const [runId, taskIds] of touched.tasks) {
        const r = runs.get(runId);
        if (!r) continue;
        for (const taskId of taskIds) {
          const t = r.tasks[taskId];
          if (!t) continue;
          const count = t.instances ? t.instances.length - (t.removed ?? 0) : null;
          this.stmts.task.run(runId, taskId, t.state, t.mapped ? 1 : 0, count, JSON.stringify(this.countsOf(runId, t)), t.error?.message ?? null, t.startedAt ?? null, t.endedAt ?? null);
        }
      }
      // Last: a run purged in this batch leaves no row, whatever else the batch wrote for it.
      for (const runId of touched.purged) {
        for (const drop of this.stmts.dropRun) drop.run(runId);
        this.tallies.forgetRun(runId);
      }
      this.stmts.setSeq.run(lastSeq);
    })();
  }

  /**
   * A task's instances by state. A finished task's are counted once more from
   * its instances, in order of first appearance, as every version has written
   * them (digests recorded by earlier versions hold that text); an unfinished
   * one's come from its tally.
   */
  private countsOf(runId: string, task: TaskRun): Record<string, number> {
    if (!task.instances || TERMINAL_TASK_STATES.has(task.state)) {
      this.tallies.forget(runId, task.id);
      return countByState(task.instances);
    }
    return this.tallies.counts(runId, task.id, task.instances);
  }

  close(): void {
    this.db.close();
  }
}
