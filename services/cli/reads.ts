/**
 * `mapflow runs list` and `mapflow tasks <runId>` (Airflow's `dags list-runs`
 * and the grid's column of one run). Both read the SQLite read model when
 * one is at hand — `--db`, or the `<data>/mapflow.sqlite` a standalone's
 * projector keeps — as Airflow's CLI reads its metadata database: one
 * indexed query however long the history. Without one (a bare `--nats`)
 * they fold the same rows from the log, so they work wherever the other
 * commands do; the two give the same JSON (test/cli-reads.e2e.test.ts).
 */
import type { Command } from "commander";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import type { RunState, TaskRun } from "../../libs/core/index.ts";
import { BadInputError } from "../../libs/errors.ts";
import { type Nats } from "../../libs/nats/index.ts";
import { MAX_PAGE, ReadQueries, type RunRow, type TaskRow } from "../../libs/store/queries.ts";
import { countsText } from "../ui/client/states.ts";
import { checkDagId, checkRunId, connectTo, credentialsOption, dataOption, natsOption, print, type StackOptions, wholeNumber } from "./common.ts";
import { currentRun } from "./operate.ts";
import { taskLabel } from "./render.ts";
import { decidedRun, registeredDag, requestsNewestFirst } from "./runs.ts";

type ReadOptions = StackOptions & { db?: string };

/** The states `--state` takes: a run's, as Airflow names them. */
export const RUN_STATES = ["queued", "running", "success", "failed", "cancelled"] as const;
export const DEFAULT_RUNS_LIMIT = 25;

/**
 * The projection to read: `--db`, else (no `--nats` naming some other
 * stack) the standalone's `<data>/mapflow.sqlite` when it exists; undefined:
 * read the log.
 */
export function projectionPath(opts: ReadOptions): string | undefined {
  if (opts.db !== undefined) {
    const path = resolve(opts.db);
    if (!existsSync(path)) throw new BadInputError(`--db ${opts.db} does not exist; point it at a projector's SQLite file (a standalone keeps one at <data>/mapflow.sqlite), or leave it out to read the log`);
    return path;
  }
  if (opts.nats !== undefined) return undefined;
  const path = resolve(opts.data, "mapflow.sqlite");
  return existsSync(path) ? path : undefined;
}

function openProjection(path: string): ReadQueries {
  try {
    const queries = new ReadQueries(path);
    queries.lastSeq(); // a file that is not a projection fails here, not halfway through
    return queries;
  } catch (err) {
    throw new BadInputError(`cannot read the projection ${path} (${(err as Error).message}); pass --db <file> with a projector's SQLite file, or --nats to read the log`, { cause: err });
  }
}

async function withNats<T>(opts: ReadOptions, read: (nats: Nats) => Promise<T>): Promise<T> {
  const nats = await connectTo(opts, "mapflow-cli", "api");
  try {
    return await read(nats);
  } finally {
    await nats.nc.close();
  }
}

// ---- runs list ---------------------------------------------------------------------------------

export type RunsFilter = { dagId?: string; state?: string; limit: number };

/** A run's row as the projection has it, from a folded state. */
function runRow(state: RunState): RunRow {
  return {
    runId: state.runId, dagId: state.dagId, dagVersion: state.dagVersion, state: state.state, conf: { ...state.conf },
    startedAt: state.startedAt, endedAt: state.endedAt ?? null,
  };
}

/** Newest first, as the projection orders them. */
const newestFirst = (a: RunRow, b: RunRow) => b.startedAt - a.startedAt || (a.runId < b.runId ? 1 : a.runId > b.runId ? -1 : 0);

async function runsFromLog(nats: Nats, filter: RunsFilter): Promise<RunRow[]> {
  if (filter.dagId !== undefined) await registeredDag(nats, filter.dagId); // a clear error for a DAG this stack does not have
  const rows: RunRow[] = [];
  for await (const request of requestsNewestFirst(nats)) {
    if (filter.dagId !== undefined && request.dagId !== filter.dagId) continue;
    const state = await decidedRun(nats, request.runId);
    if (!state || (filter.state !== undefined && state.state !== filter.state)) continue;
    rows.push(runRow(state));
    if (rows.length >= filter.limit) break;
  }
  return rows.sort(newestFirst);
}

export async function listRuns(opts: ReadOptions, filter: RunsFilter): Promise<RunRow[]> {
  const path = projectionPath(opts);
  if (path === undefined) return withNats(opts, (nats) => runsFromLog(nats, filter));
  const queries = openProjection(path);
  try {
    if (filter.dagId !== undefined && !queries.dag(filter.dagId)) {
      throw new BadInputError(`DAG '${filter.dagId}' is not registered on this stack (projection ${path}); 'mapflow dags list' shows the ones that are`);
    }
    return queries.runs(filter);
  } finally {
    queries.close();
  }
}

/** `850 ms`, `4.2 s`, `3 min 5 s`, `2 h 10 min`. */
export function duration(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

const took = (startedAt: number | null, endedAt: number | null) => (startedAt !== null && endedAt !== null ? duration(endedAt - startedAt) : startedAt !== null ? "…" : "");

export function table(rows: readonly (readonly string[])[], indent = ""): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => `${indent}${r.map((cell, c) => cell.padEnd(widths[c]!)).join("  ")}`.trimEnd()).join("\n");
}

export function renderRuns(rows: readonly RunRow[], filter: RunsFilter): string {
  if (rows.length === 0) {
    const of = [filter.dagId !== undefined ? ` of DAG ${filter.dagId}` : "", filter.state !== undefined ? ` in state ${filter.state}` : ""].join("");
    return `no runs${of}`;
  }
  return table([
    ["dag", "run", "state", "started", "took"],
    ...rows.map((r) => [r.dagId, r.runId, r.state, new Date(r.startedAt).toISOString(), took(r.startedAt, r.endedAt)]),
  ]);
}

// ---- tasks -------------------------------------------------------------------------------------

/** A task of a run as the grid shows it: the projection's row and its label (`add [6]`, `add [ ]` before it expands). */
export type TaskListRow = TaskRow & { label: string };
export type RunTasks = RunRow & { tasks: TaskListRow[] };

const withLabel = (t: TaskRow): TaskListRow => ({ ...t, label: taskLabel(t.taskId, t.mapped, t.mapCount) });

/** A task's row as the projector writes it (libs/store: counts include removed instances, the map count does not). */
function taskRow(t: TaskRun): TaskRow {
  const counts: Record<string, number> = {};
  for (const i of t.instances ?? []) counts[i.state] = (counts[i.state] ?? 0) + 1;
  return {
    taskId: t.id, state: t.state, mapped: t.mapped, mapCount: t.instances ? t.instances.length - (t.removed ?? 0) : null, counts,
    error: t.error?.message ?? null, startedAt: t.startedAt ?? null, endedAt: t.endedAt ?? null,
  };
}

function tasksFromProjection(queries: ReadQueries, runId: string): RunTasks | undefined {
  const run = queries.run(runId);
  if (!run) return undefined;
  const rows = new Map(queries.tasks(runId).map((t) => [t.taskId, t]));
  const order = queries.specOf(run.dagId, run.dagVersion)?.tasks.map((t) => t.id) ?? [...rows.keys()];
  return { ...run, tasks: order.flatMap((id) => rows.get(id) ?? []).map(withLabel) };
}

async function tasksFromLog(nats: Nats, runId: string): Promise<RunTasks> {
  const state = await currentRun(nats, runId);
  return { ...runRow(state), tasks: state.spec.tasks.flatMap((t) => (state.tasks[t.id] ? [withLabel(taskRow(state.tasks[t.id]!))] : [])) };
}

/** The run's tasks from the projection; from the log when it has no projection, or the projection has not folded the run yet. */
export async function runTasks(opts: ReadOptions, runId: string): Promise<RunTasks> {
  const path = projectionPath(opts);
  if (path !== undefined) {
    const queries = openProjection(path);
    try {
      const found = tasksFromProjection(queries, runId);
      if (found) return found;
    } finally {
      queries.close();
    }
  }
  return withNats(opts, (nats) => tasksFromLog(nats, runId));
}

export function renderTasks(run: RunTasks): string {
  const head = `run ${run.runId} of ${run.dagId}: ${run.state}${run.endedAt !== null ? ` in ${duration(run.endedAt - run.startedAt)}` : ""}`;
  // The error column only when a task failed as a whole (an expansion that failed, a run timeout): instances' errors are theirs.
  const errors = run.tasks.some((t) => t.error !== null);
  const rows = run.tasks.map((t) => [t.label, t.state, t.mapped ? countsText(t.counts) : "", took(t.startedAt, t.endedAt), ...(errors ? [t.error ?? ""] : [])]);
  return `${head}\n${table([["task", "state", "instances", "took", ...(errors ? ["error"] : [])], ...rows], "  ")}`;
}

// ---- the commands ------------------------------------------------------------------------------

function stateOption(value: string): string {
  if (!(RUN_STATES as readonly string[]).includes(value)) throw new BadInputError(`--state takes a run state: ${RUN_STATES.join(", ")}; got '${value}'`);
  return value;
}

const dbOption = "read this projection (SQLite); default: <data>/mapflow.sqlite when it exists and no --nats is given, else the log";

export function readCommands(program: Command): void {
  const runs = program
    .command("runs")
    .description("the runs of a stack, newest first (Airflow's 'dags list-runs')")
    .addHelpText("after", "\nExample:\n  npx mapflow runs list --dag sample_repeated_mapping --state failed");

  runs
    .command("list", { isDefault: true })
    .description("runs newest first: DAG, run id, state, start time, how long it took")
    .option("--dag <dagId>", "only this DAG's runs")
    .option("--state <state>", `only runs in this state (${RUN_STATES.join(", ")})`, stateOption)
    .option("--limit <n>", `at most this many (1 to ${MAX_PAGE})`, wholeNumber("--limit", 1, MAX_PAGE), DEFAULT_RUNS_LIMIT)
    .option("--json", "print an array of { runId, dagId, dagVersion, state, conf, startedAt, endedAt } (epoch ms), as GET /api/runs")
    .option("--db <file>", dbOption)
    .addOption(natsOption()).addOption(credentialsOption())
    .addOption(dataOption())
    .addHelpText("after", "\nExample:\n  npx mapflow runs list --dag sample_repeated_mapping --state failed --limit 5 --json")
    .action(async (opts: ReadOptions & { dag?: string; state?: string; limit: number; json?: boolean }) => {
      if (opts.dag !== undefined) checkDagId(opts.dag);
      const filter: RunsFilter = { dagId: opts.dag, state: opts.state, limit: opts.limit };
      const rows = await listRuns(opts, filter);
      print(Boolean(opts.json), rows, renderRuns(rows, filter));
    });

  program
    .command("tasks <runId>")
    .description("a run's tasks as the grid shows them: mapped tasks as 'add [6]' ('add [ ]' before they expand) with their instances' counts per state ('5 ✓ 1 ✗')")
    .option("--json", "print { runId, dagId, dagVersion, state, conf, startedAt, endedAt, tasks: [{ taskId, label, state, mapped, mapCount, counts, error, startedAt, endedAt }] }")
    .option("--db <file>", dbOption)
    .addOption(natsOption()).addOption(credentialsOption())
    .addOption(dataOption())
    .addHelpText("after", "\nExample:\n  npx mapflow tasks 01J9Z8Q4M3N5P7R2S6T8V0W1X3 --json")
    .action(async (runId: string, opts: ReadOptions & { json?: boolean }) => {
      checkRunId(runId);
      const run = await runTasks(opts, runId);
      print(Boolean(opts.json), run, renderTasks(run));
    });
}
