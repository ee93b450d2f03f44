/** The SQLite read model's tables. Rebuildable at any time from the log. */

/** Bump when a table changes: a read model of another version is dropped and rebuilt from the log. */
export const STORE_VERSION = 5;

export const TABLES = ["projection", "dags", "dag_versions", "dag_runs", "tasks", "task_instances", "artifacts"] as const;

export const SCHEMA = `
CREATE TABLE IF NOT EXISTS projection (
  id        INTEGER PRIMARY KEY CHECK (id = 1),
  last_seq  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS dags (
  dag_id      TEXT PRIMARY KEY,
  version     TEXT NOT NULL,
  spec        TEXT NOT NULL,
  registered_at INTEGER NOT NULL,
  -- 1 while the DAG is paused (DagPaused): no scheduled runs. DAGs start unpaused.
  paused      INTEGER NOT NULL DEFAULT 0
);
-- Every graph a run ran with, so a past run shows its own even after the DAG file changed.
CREATE TABLE IF NOT EXISTS dag_versions (
  dag_id      TEXT NOT NULL,
  version     TEXT NOT NULL,
  spec        TEXT NOT NULL,
  PRIMARY KEY (dag_id, version)
);
CREATE TABLE IF NOT EXISTS dag_runs (
  run_id      TEXT PRIMARY KEY,
  dag_id      TEXT NOT NULL,
  dag_version TEXT NOT NULL,
  state       TEXT NOT NULL,
  conf        TEXT NOT NULL,
  started_at  INTEGER NOT NULL,
  ended_at    INTEGER,
  -- The last log sequence that changed anything of the run: live pages ask which runs moved.
  updated_seq INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS dag_runs_by_dag ON dag_runs (dag_id, started_at);
CREATE INDEX IF NOT EXISTS dag_runs_by_update ON dag_runs (updated_seq);
CREATE TABLE IF NOT EXISTS tasks (
  run_id      TEXT NOT NULL,
  task_id     TEXT NOT NULL,
  state       TEXT NOT NULL,
  mapped      INTEGER NOT NULL,
  map_count   INTEGER,
  -- JSON: instances by state, e.g. {"success": 998, "failed": 2}.
  counts      TEXT NOT NULL,
  error       TEXT,
  started_at  INTEGER,
  ended_at    INTEGER,
  PRIMARY KEY (run_id, task_id)
);
CREATE TABLE IF NOT EXISTS task_instances (
  run_id      TEXT NOT NULL,
  task_id     TEXT NOT NULL,
  map_index   INTEGER NOT NULL,
  state       TEXT NOT NULL,
  tries       INTEGER NOT NULL,
  result      TEXT,
  error       TEXT,
  worker      TEXT,
  label       TEXT,
  group_index INTEGER,
  started_at  INTEGER,
  ended_at    INTEGER,
  PRIMARY KEY (run_id, task_id, map_index)
);
-- Files tries stored with ctx.artifact (recorded on their outcome events); every try's, not only the last.
CREATE TABLE IF NOT EXISTS artifacts (
  run_id       TEXT NOT NULL,
  task_id      TEXT NOT NULL,
  map_index    INTEGER NOT NULL,
  try          INTEGER NOT NULL,
  name         TEXT NOT NULL,
  content_type TEXT NOT NULL,
  bytes        INTEGER NOT NULL,
  object       TEXT NOT NULL,
  PRIMARY KEY (run_id, task_id, map_index, try, name)
);
`;
