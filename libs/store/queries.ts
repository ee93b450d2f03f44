/**
 * Reads of the SQLite read model for the web UI and its JSON API: what the
 * screens show, shaped as the API returns it. Read-only; the projector is
 * the one writer. Column and order names are checked against lists here,
 * never spliced from a request.
 */
import Database from "better-sqlite3";
import type { DagSpec } from "../core/spec.ts";
import type { ArtifactListing } from "../core/artifacts.ts";

export type StateCounts = Record<string, number>;

export type RunRow = {
  runId: string;
  dagId: string;
  dagVersion: string;
  state: string;
  conf: Record<string, unknown>;
  startedAt: number;
  endedAt: number | null;
};

export type DagRow = { dagId: string; version: string; spec: DagSpec; registeredAt: number; paused: boolean };

export type TaskRow = {
  taskId: string;
  state: string;
  mapped: boolean;
  /** Instances once expanded; null before. */
  mapCount: number | null;
  counts: StateCounts;
  error: string | null;
  startedAt: number | null;
  endedAt: number | null;
};

export type InstanceRow = {
  mapIndex: number;
  label: string | null;
  state: string;
  tries: number;
  startedAt: number | null;
  endedAt: number | null;
  worker: string | null;
  /** JSON text, cut to `resultLimit` characters in lists. */
  result: string | null;
  resultLength: number;
  error: { name?: string; message: string; stack?: string } | null;
  group: number | null;
};

export const INSTANCE_SORTS = ["map_index", "state", "tries", "started_at", "duration", "worker"] as const;
export type InstanceSort = (typeof INSTANCE_SORTS)[number];
const SORT_SQL: Record<InstanceSort, string> = {
  map_index: "map_index",
  state: "state",
  tries: "tries",
  started_at: "started_at",
  duration: "(ended_at - started_at)",
  worker: "worker",
};

/** A file an instance's try stored with `ctx.artifact` (the same shape as `mapflow artifacts --json` lists). */
export type ArtifactRow = ArtifactListing;
type RawArtifact = { task_id: string; map_index: number; try: number; name: string; content_type: string; bytes: number; object: string };
const artifactRow = (a: RawArtifact): ArtifactRow => ({
  taskId: a.task_id, mapIndex: a.map_index, try: a.try, name: a.name, contentType: a.content_type, bytes: a.bytes, object: a.object,
});

export type InstancePage = { total: number; counts: StateCounts; offset: number; rows: InstanceRow[] };
export type InstanceQuery = { state?: string; sort?: InstanceSort; desc?: boolean; offset?: number; limit?: number };

/** A result longer than this is cut in instance lists; the instance itself has it whole. */
export const RESULT_PREVIEW_CHARS = 2000;
export const MAX_PAGE = 500;

type RawRun = { run_id: string; dag_id: string; dag_version: string; state: string; conf: string; started_at: number; ended_at: number | null };
type RawTask = { task_id: string; state: string; mapped: number; map_count: number | null; counts: string | null; error: string | null; started_at: number | null; ended_at: number | null };
type RawInstance = {
  map_index: number; label: string | null; state: string; tries: number; started_at: number | null; ended_at: number | null;
  worker: string | null; result: string | null; result_length: number | null; error: string | null; group_index: number | null;
};

const run = (r: RawRun): RunRow => ({
  runId: r.run_id, dagId: r.dag_id, dagVersion: r.dag_version, state: r.state, conf: JSON.parse(r.conf) as Record<string, unknown>,
  startedAt: r.started_at, endedAt: r.ended_at,
});
const task = (t: RawTask): TaskRow => ({
  taskId: t.task_id, state: t.state, mapped: t.mapped === 1, mapCount: t.map_count, counts: t.counts ? (JSON.parse(t.counts) as StateCounts) : {},
  error: t.error, startedAt: t.started_at, endedAt: t.ended_at,
});
const instance = (i: RawInstance): InstanceRow => ({
  mapIndex: i.map_index, label: i.label, state: i.state, tries: i.tries, startedAt: i.started_at, endedAt: i.ended_at, worker: i.worker,
  result: i.result, resultLength: i.result_length ?? 0, error: i.error ? (JSON.parse(i.error) as InstanceRow["error"]) : null, group: i.group_index,
});

type RawDag = { dag_id: string; version: string; spec: string; registered_at: number; paused: number };
const dagRow = (d: RawDag): DagRow => ({
  dagId: d.dag_id, version: d.version, spec: JSON.parse(d.spec) as DagSpec, registeredAt: d.registered_at, paused: d.paused === 1,
});

export class ReadQueries {
  readonly db: Database.Database;
  // The live stream asks these every tick while a page is open: prepared once.
  private readonly stmts;

  constructor(path: string) {
    // Read-only: a second connection beside the projector's, never a writer (WAL lets both run).
    this.db = new Database(path, { readonly: true, fileMustExist: true });
    this.stmts = {
      lastSeq: this.db.prepare<[], { last_seq: number }>("SELECT last_seq FROM projection WHERE id = 1"),
      changedRuns: this.db.prepare<[number], { run_id: string; dag_id: string; state: string }>("SELECT run_id, dag_id, state FROM dag_runs WHERE updated_seq > ?"),
      dagVersions: this.db.prepare<[], { mark: string | null }>("SELECT group_concat(dag_id || '@' || version || ':' || paused) AS mark FROM (SELECT dag_id, version, paused FROM dags ORDER BY dag_id)"),
    };
  }

  /** The last stream sequence the projection applied. */
  lastSeq(): number {
    return this.stmts.lastSeq.get()?.last_seq ?? 0;
  }

  /** Runs whose rows changed after `seq` (see the projector's `updated_seq`). */
  changedRuns(seq: number): { runId: string; dagId: string; state: string }[] {
    return this.stmts.changedRuns.all(seq).map((r) => ({ runId: r.run_id, dagId: r.dag_id, state: r.state }));
  }

  /** Changes whenever a DAG is registered, changes version, or is paused or unpaused. */
  dagsMark(): string {
    return this.stmts.dagVersions.get()?.mark ?? "";
  }

  dags(): DagRow[] {
    return this.db.prepare<[], RawDag>("SELECT dag_id, version, spec, registered_at, paused FROM dags ORDER BY dag_id").all().map(dagRow);
  }

  dag(dagId: string): DagRow | undefined {
    const row = this.db.prepare<[string], RawDag>("SELECT dag_id, version, spec, registered_at, paused FROM dags WHERE dag_id = ?").get(dagId);
    return row ? dagRow(row) : undefined;
  }

  /** The graph a run ran with: its own version's, else the DAG's latest. */
  specOf(dagId: string, version: string): DagSpec | undefined {
    const row = this.db.prepare<[string, string], { spec: string }>("SELECT spec FROM dag_versions WHERE dag_id = ? AND version = ?").get(dagId, version);
    return row ? (JSON.parse(row.spec) as DagSpec) : this.dag(dagId)?.spec;
  }

  runs(filter: { dagId?: string; state?: string; limit?: number } = {}): RunRow[] {
    const where: string[] = [];
    const params: (string | number)[] = [];
    if (filter.dagId) where.push("dag_id = ?"), params.push(filter.dagId);
    if (filter.state) where.push("state = ?"), params.push(filter.state);
    const sql = `SELECT * FROM dag_runs ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY started_at DESC, run_id DESC LIMIT ?`;
    return this.db.prepare<(string | number)[], RawRun>(sql).all(...params, Math.min(filter.limit ?? 25, MAX_PAGE)).map(run);
  }

  run(runId: string): RunRow | undefined {
    const row = this.db.prepare<[string], RawRun>("SELECT * FROM dag_runs WHERE run_id = ?").get(runId);
    return row ? run(row) : undefined;
  }

  tasks(runId: string): TaskRow[] {
    return this.db.prepare<[string], RawTask>("SELECT * FROM tasks WHERE run_id = ?").all(runId).map(task);
  }

  /** The tasks of several runs at once (the grid), by run id. */
  tasksOfRuns(runIds: readonly string[]): Map<string, TaskRow[]> {
    const byRun = new Map<string, TaskRow[]>(runIds.map((id) => [id, []]));
    if (runIds.length === 0) return byRun;
    const rows = this.db
      .prepare<string[], RawTask & { run_id: string }>(`SELECT * FROM tasks WHERE run_id IN (${runIds.map(() => "?").join(",")})`)
      .all(...runIds);
    for (const r of rows) byRun.get(r.run_id)?.push(task(r));
    return byRun;
  }

  instances(runId: string, taskId: string, query: InstanceQuery = {}): InstancePage {
    const filter = query.state ? "AND state = ?" : "";
    const params: (string | number)[] = query.state ? [runId, taskId, query.state] : [runId, taskId];
    const total = this.db.prepare<(string | number)[], { n: number }>(`SELECT COUNT(*) AS n FROM task_instances WHERE run_id = ? AND task_id = ? ${filter}`).get(...params)!.n;
    const order = `${SORT_SQL[query.sort ?? "map_index"]} ${query.desc ? "DESC" : "ASC"}, map_index ASC`;
    const limit = Math.max(1, Math.min(query.limit ?? 100, MAX_PAGE));
    const offset = Math.max(0, query.offset ?? 0);
    const rows = this.db
      .prepare<(string | number)[], RawInstance>(
        `SELECT map_index, label, state, tries, started_at, ended_at, worker, substr(result, 1, ${RESULT_PREVIEW_CHARS}) AS result,
                length(result) AS result_length, error, group_index
         FROM task_instances WHERE run_id = ? AND task_id = ? ${filter} ORDER BY ${order} LIMIT ? OFFSET ?`,
      )
      .all(...params, limit, offset)
      .map(instance);
    const counts = this.tasks(runId).find((t) => t.taskId === taskId)?.counts ?? {};
    return { total, counts, offset, rows };
  }

  instance(runId: string, taskId: string, mapIndex: number): InstanceRow | undefined {
    const row = this.db
      .prepare<[string, string, number], RawInstance>(
        "SELECT map_index, label, state, tries, started_at, ended_at, worker, result, length(result) AS result_length, error, group_index FROM task_instances WHERE run_id = ? AND task_id = ? AND map_index = ?",
      )
      .get(runId, taskId, mapIndex);
    return row ? instance(row) : undefined;
  }

  /** A run's artifacts (of one task, or one instance), by task, map index, try and name. */
  artifacts(runId: string, filter: { taskId?: string; mapIndex?: number } = {}): ArtifactRow[] {
    const where = ["run_id = ?"];
    const params: (string | number)[] = [runId];
    if (filter.taskId !== undefined) where.push("task_id = ?"), params.push(filter.taskId);
    if (filter.mapIndex !== undefined) where.push("map_index = ?"), params.push(filter.mapIndex);
    return this.db
      .prepare<(string | number)[], RawArtifact>(`SELECT * FROM artifacts WHERE ${where.join(" AND ")} ORDER BY task_id, map_index, try, name`)
      .all(...params)
      .map(artifactRow);
  }

  artifact(runId: string, taskId: string, mapIndex: number, tryNumber: number, name: string): ArtifactRow | undefined {
    const row = this.db
      .prepare<[string, string, number, number, string], RawArtifact>("SELECT * FROM artifacts WHERE run_id = ? AND task_id = ? AND map_index = ? AND try = ? AND name = ?")
      .get(runId, taskId, mapIndex, tryNumber, name);
    return row ? artifactRow(row) : undefined;
  }

  close(): void {
    this.db.close();
  }
}
