/** The read model against a fresh replay of the log: the proof that the projection loses and invents nothing. */
import { join } from "node:path";
import type Database from "better-sqlite3";
import type { Nats } from "../../libs/nats/index.ts";
import { startProjector } from "../../services/projector/index.ts";
import { createLogger } from "../../libs/log/index.ts";
import { tempDir } from "./index.ts";

const log = createLogger("test", "warn");

/**
 * Every row of the run tables, in a stable order. A run's `updated_seq` is left out: it says when the
 * projector last wrote the row (a late duplicate rewrites it unchanged), not what the run's state is.
 */
export function dumpTables(db: Database.Database) {
  return {
    runs: (db.prepare("SELECT * FROM dag_runs ORDER BY run_id").all() as Record<string, unknown>[]).map(({ updated_seq: _, ...row }) => row),
    tasks: db.prepare("SELECT * FROM tasks ORDER BY run_id, task_id").all(),
    instances: db.prepare("SELECT * FROM task_instances ORDER BY run_id, task_id, map_index").all(),
  };
}

/** Rebuilds a read model from the log up to `last` in a temporary file and reads it with `read`. */
export async function replayed<T>(nats: Nats, last: number, read: (db: Database.Database) => T): Promise<T> {
  const dir = tempDir("mapflow-replay-");
  const replay = await startProjector({ nats, log, dbPath: join(dir.path, "replay.sqlite") });
  try {
    await replay.waitFor(last);
    return read(replay.model.db);
  } finally {
    await replay.stop();
    dir.remove();
  }
}
