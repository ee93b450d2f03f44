// ELT over a set of files that changes from run to run: one load instance per CSV file found at run time,
// each into its own warehouse table (SQLite stands in for the warehouse), then a transform and a report.
// A bad file fails its own instance only; an empty folder skips the load, and the report still runs
// (its trigger rule is all_done) and says so.
//   npx mapflow run elt_files --dags examples
//   npx mapflow run elt_files --dags examples --conf '{"folder": "/data/incoming", "warehouse": "/tmp/wh.sqlite"}'
import { mkdirSync, readdirSync, readFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import Database from "better-sqlite3";
import { parse } from "csv-parse/sync";
import { dag, task } from "mapflow";

type Loaded = { file: string; table: string; rows: number; amount: number | null };

/** A table name from a file name: `orders_2026-01.csv` → `raw_orders_2026_01`. */
const tableOf = (file: string) => `raw_${basename(file, ".csv").toLowerCase().replace(/[^a-z0-9_]/g, "_")}`;

function warehouse(path: string): Database.Database {
  // The default lives under .mapflow/, which a fresh clone has not made yet.
  mkdirSync(dirname(resolve(path)), { recursive: true });
  const db = new Database(resolve(path));
  db.pragma("journal_mode = WAL");
  db.pragma("busy_timeout = 10000"); // loads run in parallel, each in its own transaction
  return db;
}

export default dag({
  id: "elt_files",
  description: "Extract and load every CSV in a folder, one instance per file, then transform and report",
  params: { folder: "examples/data/elt", warehouse: ".mapflow/elt-warehouse.sqlite" },
}, () => {
  const listFiles = task("list_files", (_: {}, ctx) => {
    const folder = resolve(String(ctx.conf.folder));
    return readdirSync(folder).filter((f) => f.endsWith(".csv")).sort().map((f) => join(folder, f));
  })({});

  const load = task("load", ({ file }: { file: string }, ctx): Loaded => {
    // Extract: a file that is not a consistent CSV with a header throws here and fails this instance only.
    const rows = parse(readFileSync(file, "utf8"), { columns: true, skip_empty_lines: true, trim: true }) as Record<string, string>[];
    if (rows.length === 0) throw new Error(`${basename(file)} has a header but no rows`);
    const columns = Object.keys(rows[0]!);
    if (columns.some((c) => !/^[A-Za-z_][A-Za-z0-9_]*$/.test(c))) throw new Error(`${basename(file)} has a column name that is not an identifier: ${columns.join(", ")}`);
    const table = tableOf(file);
    const db = warehouse(String(ctx.conf.warehouse));
    try {
      // Load: the table is replaced whole, so loading a file again (a retry, a clear) never doubles it.
      db.transaction(() => {
        db.exec(`DROP TABLE IF EXISTS ${table}`);
        db.exec(`CREATE TABLE ${table} (${columns.map((c) => `${c} TEXT`).join(", ")})`);
        const insert = db.prepare(`INSERT INTO ${table} VALUES (${columns.map(() => "?").join(", ")})`);
        for (const row of rows) insert.run(...columns.map((c) => row[c]));
      })();
    } finally {
      db.close();
    }
    const amount = columns.includes("amount") ? rows.reduce((sum, r) => sum + Number(r["amount"]), 0) : null;
    ctx.log.info({ file: basename(file), table, rows: rows.length }, "loaded");
    return { file: basename(file), table, rows: rows.length, amount };
  }, { retries: 1, mapIndexLabel: ({ file }: { file: string }) => basename(file) }).expand({ file: listFiles });

  task("report", ({ loads }: { loads: Loaded[] }, ctx) => {
    const failed = ctx.upstreamStates?.["load"]?.failedMapIndexes ?? [];
    if (loads.length === 0) return { tables: 0, rows: 0, failed: failed.length, note: "no file was loaded" };
    // Transform: one summary table over everything loaded, rebuilt on every run.
    const db = warehouse(String(ctx.conf.warehouse));
    try {
      db.transaction(() => {
        db.exec("DROP TABLE IF EXISTS summary");
        db.exec("CREATE TABLE summary (source TEXT PRIMARY KEY, rows INTEGER, amount REAL)");
        const insert = db.prepare("INSERT INTO summary VALUES (?, ?, ?)");
        for (const l of loads) insert.run(l.table, l.rows, l.amount);
      })();
    } finally {
      db.close();
    }
    const byTable = Object.fromEntries(loads.map((l) => [l.table, l.rows]));
    return { tables: loads.length, rows: loads.reduce((n, l) => n + l.rows, 0), net: Number(loads.reduce((s, l) => s + (l.amount ?? 0), 0).toFixed(2)), failed: failed.length, byTable };
  }, { triggerRule: "all_done", partialResults: true })({ loads: load });
});
