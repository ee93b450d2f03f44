/**
 * `mapflow dags list | show | pause | unpause` (Airflow's `airflow dags …`).
 * Everything is read from the log, so the commands work the same beside a
 * standalone (`--data`) and against a bare `--nats`: each DAG's newest
 * registration and pause state are the last messages of its DAG subjects,
 * and its last run is found by reading run requests backwards from the
 * log's end in growing windows (recent runs cost a little; only a DAG that
 * has not run for a long time reads far back).
 */
import type { Command } from "commander";
import { isMapped } from "../../libs/core/index.ts";
import type { DagRegistered, RunRequested, RunType } from "../../libs/events/index.ts";
import { BadInputError } from "../../libs/errors.ts";
import { createLogger } from "../../libs/log/index.ts";
import { STREAMS, subjects } from "../../libs/names/index.ts";
import { followEvents, logBadEvent, type Nats } from "../../libs/nats/index.ts";
import { checkDagId, connectTo, dataOption, natsOption, credentialsOption, print } from "./common.ts";
import { taskLabel } from "./render.ts";
import { setPaused } from "./pause.ts";
import { decidedRun, requestsNewestFirst } from "./runs.ts";

export type DagInfo = { readonly registration: DagRegistered; readonly paused: boolean };

/** Every registered DAG with its pause state, by id (sorted): the last message of each DAG subject. */
export async function readDags(nats: Nats): Promise<Map<string, DagInfo>> {
  const last = await nats.jsm.streams.getMessage(STREAMS.events, { last_by_subj: subjects.allDags });
  const registrations = new Map<string, DagRegistered>();
  const paused = new Map<string, boolean>();
  if (last) {
    const follow = await followEvents(nats.js, subjects.allDags, 1, logBadEvent(createLogger("cli", "warn")), { lastPerSubject: true });
    try {
      for await (const { seq, event } of follow) {
        if (event?.type === "DagRegistered") registrations.set(event.dagId, event);
        else if (event?.type === "DagPaused") paused.set(event.dagId, event.paused);
        if (seq >= last.seq) break;
      }
    } finally {
      await follow.stop();
    }
  }
  const ids = [...registrations.keys()].sort();
  return new Map(ids.map((id) => [id, { registration: registrations.get(id)!, paused: paused.get(id) ?? false }]));
}

/** The newest run request of each of these DAGs. */
async function latestRequests(nats: Nats, dagIds: ReadonlySet<string>): Promise<Map<string, RunRequested>> {
  const found = new Map<string, RunRequested>();
  for await (const request of requestsNewestFirst(nats)) {
    if (dagIds.has(request.dagId) && !found.has(request.dagId)) found.set(request.dagId, request);
    if (found.size === dagIds.size) break;
  }
  return found;
}

export type LastRun = { runId: string; state: string; runType: RunType; logicalDate: string };
export type DagListRow = { dagId: string; version: string; schedule: string | null; paused: boolean; tasks: number; lastRun: LastRun | null };

export async function listDags(nats: Nats): Promise<DagListRow[]> {
  const dags = await readDags(nats);
  const latest = await latestRequests(nats, new Set(dags.keys()));
  const rows: DagListRow[] = [];
  for (const [dagId, { registration, paused }] of dags) {
    const request = latest.get(dagId);
    const lastRun: LastRun | null = request
      ? {
        runId: request.runId, state: (await decidedRun(nats, request.runId))?.state ?? "unknown", runType: request.runType ?? "manual",
        logicalDate: new Date(request.logicalDate ?? request.at).toISOString(),
      }
      : null;
    const { spec } = registration;
    rows.push({ dagId, version: registration.version, schedule: spec.schedule ?? null, paused, tasks: spec.tasks.length, lastRun });
  }
  return rows;
}

function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => cell.padEnd(widths[c]!)).join("  ").trimEnd()).join("\n");
}

export function renderDagList(rows: readonly DagListRow[]): string {
  if (rows.length === 0) return "no DAGs are registered on this stack; start a worker (or standalone) with --dags <dir>";
  return table([
    ["dag", "schedule", "paused", "version", "tasks", "last run"],
    ...rows.map((r) => [
      r.dagId, r.schedule ?? "-", r.paused ? "yes" : "no", r.version, String(r.tasks),
      r.lastRun ? `${r.lastRun.state}  ${r.lastRun.logicalDate}  ${r.lastRun.runId}` : "-",
    ]),
  ]);
}

export type DagShow = {
  dagId: string;
  version: string;
  description: string | null;
  schedule: string | null;
  startDate: string | null;
  catchup: boolean;
  maxActiveRuns: number | null;
  paused: boolean;
  registeredAt: string;
  /** In definition order, upstreams first; `label` is the graph's (`add [ ]` for a mapped task). */
  tasks: { taskId: string; label: string; mapped: boolean; operator: string; group: string | null; upstream: string[] }[];
};

export function dagShow({ registration, paused }: DagInfo): DagShow {
  const { spec } = registration;
  const mapped = new Map(spec.tasks.map((t) => [t.id, isMapped(t)]));
  return {
    dagId: registration.dagId, version: registration.version, description: spec.description, schedule: spec.schedule ?? null,
    startDate: spec.startDate, catchup: spec.catchup, maxActiveRuns: spec.maxActiveRuns ?? null, paused,
    registeredAt: new Date(registration.at).toISOString(),
    tasks: spec.tasks.map((t) => ({
      taskId: t.id, label: taskLabel(t.id, mapped.get(t.id)!, null), mapped: mapped.get(t.id)!, operator: t.operator, group: t.group, upstream: [...t.upstream],
    })),
  };
}

/** The graph as lines: each task, upstreams first, with what it waits for. */
export function renderDagShow(dag: DagShow): string {
  const when = dag.schedule
    ? `schedule ${dag.schedule} (UTC) from ${dag.startDate ?? "the latest interval"}${dag.catchup ? ", catchup" : ""}`
    : "manual runs only";
  const lines = [`${dag.dagId}  version ${dag.version}  ${when}  ${dag.paused ? "paused" : "unpaused"}`];
  if (dag.description) lines.push(`  ${dag.description}`);
  const labels = new Map(dag.tasks.map((t) => [t.taskId, t.label]));
  const width = Math.max(...dag.tasks.map((t) => t.label.length));
  for (const t of dag.tasks) {
    const after = t.upstream.length ? `  <- ${t.upstream.map((u) => labels.get(u) ?? u).join(", ")}` : "";
    lines.push(`  ${t.label.padEnd(width)}${after}`.trimEnd());
  }
  return lines.join("\n");
}

export function dagCommands(program: Command): void {
  const dags = program
    .command("dags")
    .description("the DAGs registered on a stack: list, show, pause, unpause")
    .addHelpText("after", "\nExample:\n  npx mapflow dags list");

  dags
    .command("list")
    .description("every registered DAG: schedule, paused, version, task count, last run")
    .option("--json", "print an array of { dagId, version, schedule, paused, tasks, lastRun: { runId, state, runType, logicalDate } | null }")
    .addOption(natsOption()).addOption(credentialsOption())
    .addOption(dataOption())
    .addHelpText("after", "\nExample:\n  npx mapflow dags list --json")
    .action(async (opts: { json?: boolean; nats?: string; data: string }) => {
      const nats = await connectTo(opts, "mapflow-dags", "api");
      try {
        const rows = await listDags(nats);
        process.stdout.write(opts.json ? `${JSON.stringify(rows)}\n` : `${renderDagList(rows)}\n`);
      } finally {
        await nats.nc.close();
      }
    });

  dags
    .command("show <dagId>")
    .description("a DAG's graph: its tasks in order with their upstreams (mapped tasks as 'name [ ]')")
    .option("--json", "print JSON")
    .addOption(natsOption()).addOption(credentialsOption())
    .addOption(dataOption())
    .addHelpText("after", "\nExample:\n  npx mapflow dags show sample_repeated_mapping")
    .action(async (dagId: string, opts: { json?: boolean; nats?: string; data: string }) => {
      checkDagId(dagId);
      const nats = await connectTo(opts, "mapflow-dags", "api");
      try {
        const info = (await readDags(nats)).get(dagId);
        if (!info) throw new BadInputError(`DAG '${dagId}' is not registered on this stack; 'mapflow dags list' shows the ones that are`);
        const shown = dagShow(info);
        print(Boolean(opts.json), shown, renderDagShow(shown));
      } finally {
        await nats.nc.close();
      }
    });

  for (const [name, paused] of [["pause", true], ["unpause", false]] as const) {
    dags
      .command(`${name} <dagId>`)
      .description(paused
        ? "stop scheduled runs of a DAG (manual triggers still run); its schedule resumes from where it was when unpaused"
        : "let a paused DAG's schedule run again (with catchup, the intervals missed meanwhile run too)")
      .option("--json", "print JSON")
      .addOption(natsOption()).addOption(credentialsOption())
      .addOption(dataOption())
      .addHelpText("after", `\nExample:\n  npx mapflow dags ${name} daily_report`)
      .action(async (dagId: string, opts: { json?: boolean; nats?: string; data: string }) => {
        checkDagId(dagId);
        const nats = await connectTo(opts, "mapflow-dags", "api");
        try {
          const result = await setPaused(nats, dagId, paused);
          const text = result.changed ? `${paused ? "paused" : "unpaused"} DAG ${dagId}` : `DAG ${dagId} was already ${paused ? "paused" : "unpaused"}`;
          print(Boolean(opts.json), result, text);
        } finally {
          await nats.nc.close();
        }
      });
  }
}
