/**
 * Comparing read models: a stable digest of each run's rows, and the first
 * row where two read models differ, table by table. Bookkeeping that says
 * when a row was written rather than what the run is (the checkpoint, a
 * run's `updated_seq`) is left out, so a live projection and a replay of
 * the same log compare equal however each was batched.
 */
import { createHash } from "node:crypto";
import type Database from "better-sqlite3";

type Row = Record<string, unknown>;

/** Each compared table: its key columns (the order rows are read in), and columns left out. */
const TABLES = [
  { name: "dags", key: ["dag_id"], skip: [] },
  { name: "dag_versions", key: ["dag_id", "version"], skip: [] },
  { name: "dag_runs", key: ["run_id"], skip: ["updated_seq"] },
  { name: "tasks", key: ["run_id", "task_id"], skip: [] },
  { name: "task_instances", key: ["run_id", "task_id", "map_index"], skip: [] },
  // Added after digests were first recorded: hashed only when a run has rows here, so a run without artifacts keeps its digest.
  { name: "artifacts", key: ["run_id", "task_id", "map_index", "try", "name"], skip: [], onlyWithRows: true },
] as const;

function clean(row: Row, skip: readonly string[]): Row {
  const out: Row = {};
  for (const [k, v] of Object.entries(row)) if (!skip.includes(k)) out[k] = v;
  return out;
}

function rows(db: Database.Database, table: (typeof TABLES)[number], where = "", params: unknown[] = []): IterableIterator<Row> {
  return db.prepare(`SELECT * FROM ${table.name} ${where} ORDER BY ${table.key.join(", ")}`).iterate(...params) as IterableIterator<Row>;
}

/** sha256 of a run's rows (its run row, tasks, instances and artifacts), in key order. */
export function runDigest(db: Database.Database, runId: string): string {
  const hash = createHash("sha256");
  for (const table of TABLES.filter((t) => (t.key as readonly string[]).includes("run_id"))) {
    const header = `\n${table.name}\n`;
    let headerDue = "onlyWithRows" in table;
    if (!headerDue) hash.update(header);
    for (const row of rows(db, table, "WHERE run_id = ?", [runId])) {
      if (headerDue) {
        hash.update(header);
        headerDue = false;
      }
      hash.update(`${JSON.stringify(clean(row, table.skip))}\n`);
    }
  }
  return hash.digest("hex");
}

/** Every run's digest, by run id. */
export function runDigests(db: Database.Database, runIds?: readonly string[]): Map<string, string> {
  const ids = runIds ?? (db.prepare("SELECT run_id FROM dag_runs ORDER BY run_id").pluck().all() as string[]);
  return new Map(ids.map((id) => [id, runDigest(db, id)]));
}

export type Difference = {
  readonly table: string;
  /** The differing row's key (run, task, map index…), from whichever side has it. */
  readonly key: Row;
  readonly expected: Row | undefined;
  readonly actual: Row | undefined;
};

const keyOf = (row: Row, key: readonly string[]) => Object.fromEntries(key.map((k) => [k, row[k]]));

function compareKeys(a: Row, b: Row, key: readonly string[]): number {
  for (const k of key) {
    const x = a[k] as string | number;
    const y = b[k] as string | number;
    if (x < y) return -1;
    if (x > y) return 1;
  }
  return 0;
}

/** The first row, table by table in key order, where `actual` differs from `expected`; undefined when they agree. */
export function firstDifference(expected: Database.Database, actual: Database.Database): Difference | undefined {
  for (const table of TABLES) {
    const a = rows(expected, table);
    const b = rows(actual, table);
    let x = a.next();
    let y = b.next();
    try {
      while (!x.done || !y.done) {
        const order = x.done ? 1 : y.done ? -1 : compareKeys(x.value, y.value, table.key);
        if (order < 0) return { table: table.name, key: keyOf(x.value!, table.key), expected: clean(x.value!, table.skip), actual: undefined };
        if (order > 0) return { table: table.name, key: keyOf(y.value!, table.key), expected: undefined, actual: clean(y.value!, table.skip) };
        const e = clean(x.value, table.skip);
        const g = clean(y.value!, table.skip);
        if (JSON.stringify(e) !== JSON.stringify(g)) return { table: table.name, key: keyOf(e, table.key), expected: e, actual: g };
        x = a.next();
        y = b.next();
      }
    } finally {
      a.return?.();
      b.return?.();
    }
  }
  return undefined;
}
