/**
 * The auditor's commands: a run's history (`events`), rebuilding the read
 * model from the log or an archive, at any point (`replay`), and checking
 * the live projection and the log itself (`audit verify`).
 */
import type { Command } from "commander";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { outcomesOf, type MapflowEvent } from "../../libs/events/index.ts";
import { BadInputError } from "../../libs/errors.ts";
import { subjects } from "../../libs/names/index.ts";
import { followEvents, hasMessageFrom, lastLogSeq, readRecords, type LogRecord } from "../../libs/nats/index.ts";
import { readArchive } from "../audit/archive.ts";
import { replayToFile, type Cut } from "../audit/replay.ts";
import { verifyProjection } from "../audit/verify.ts";
import { cleanRuns } from "../audit/clean.ts";
import { checkRunId, connectTo, credentialsOption, dataOption, EXIT, natsOption, untilSignal } from "./common.ts";

/** The fields every history row has a column for; the rest is the short payload. */
const COLUMNS = new Set(["type", "runId", "taskId", "mapIndex", "try", "worker", "at", "spec"]);

export type HistoryRow = {
  seq: number;
  time: string;
  type: string;
  taskId: string | null;
  mapIndex: number | null;
  try: number | null;
  worker: string | null;
  payload: Record<string, unknown>;
  /** Set on the rows of an InstancesFinished: the log holds them in that one event, at `seq`. */
  batch?: true;
};

/** The history rows of one event: an InstancesFinished gives a row per outcome, as its single events would, each marked `batch`. */
export function historyRows(seq: number, time: number, event: MapflowEvent): HistoryRow[] {
  if (event.type !== "InstancesFinished") return [historyRow(seq, time, event)];
  return outcomesOf(event).map((outcome) => ({ ...historyRow(seq, time, outcome), batch: true as const }));
}

function historyRow(seq: number, time: number, event: MapflowEvent): HistoryRow {
  const e = event as Record<string, unknown>;
  const payload = Object.fromEntries(Object.entries(e).filter(([k, v]) => !COLUMNS.has(k) && v !== undefined));
  return {
    seq, time: new Date(time).toISOString(), type: event.type,
    taskId: (e["taskId"] as string | undefined) ?? null,
    mapIndex: (e["mapIndex"] as number | undefined) ?? null,
    try: (e["try"] as number | undefined) ?? null,
    worker: (e["worker"] as string | undefined) ?? null,
    payload,
  };
}

function short(value: unknown, width = 70): string {
  const text = JSON.stringify(value) ?? "";
  return text.length > width ? `${text.slice(0, width - 1)}…` : text;
}

export function renderHistoryRow(r: HistoryRow): string {
  const where = r.taskId === null ? "" : `${r.taskId}${r.mapIndex !== null && r.mapIndex >= 0 ? `[${r.mapIndex}]` : ""}`;
  return [
    String(r.seq).padStart(7), r.time, r.type.padEnd(18), where.padEnd(16), r.try === null ? "   " : `#${r.try}`.padEnd(3),
    (r.worker ?? "").padEnd(18), Object.keys(r.payload).length ? short(r.payload) : "",
  ].join("  ").trimEnd();
}

/** `--until` is a sequence number or an ISO time. */
function parseUntil(text: string | undefined): Pick<Cut, "untilSeq" | "untilTime"> {
  if (text === undefined) return {};
  if (/^\d+$/.test(text)) return { untilSeq: Number(text) };
  const time = Date.parse(text);
  if (Number.isNaN(time)) throw new BadInputError(`--until takes a stream sequence (e.g. 1200) or an ISO time (e.g. 2026-11-27T07:00:00Z), got '${text}'`);
  return { untilTime: time };
}

export function auditCommands(program: Command): void {
  program
    .command("db")
    .description("the log's retention")
    .addHelpText("after", "\nExample:\n  npx mapflow db clean --before 2026-01-01 --archive runs-2025.jsonl")
    .command("clean")
    .description("archive the events of finished runs that ended before a date, check the archive replays to the same rows, then purge those runs")
    .addOption(natsOption()).addOption(credentialsOption())
    .addOption(dataOption())
    .requiredOption("--before <date>", "runs that ended before this ISO date or time")
    .option("--archive <file>", "write their events here first (JSON lines; replay with 'replay --from-archive')")
    .option("--no-archive", "purge without an archive: their history is gone for good")
    .option("--dry-run", "list what would be cleaned; change nothing")
    .option("--db <file>", "the live projection (default <data>/mapflow.sqlite)")
    .option("--json", "print the report as JSON")
    .addHelpText("after", "\nExample:\n  npx mapflow db clean --before 2026-01-01 --archive runs-2025.jsonl --dry-run")
    .action(async (opts: { nats?: string; data: string; before: string; archive?: string | boolean; dryRun?: boolean; db?: string; json?: boolean }) => {
      const before = Date.parse(opts.before);
      if (Number.isNaN(before)) throw new BadInputError(`--before takes an ISO date or time (e.g. 2026-01-01 or 2026-01-01T00:00:00Z), got '${opts.before}'`);
      if ((opts.archive === undefined || opts.archive === true) && !opts.dryRun) throw new BadInputError("say where to archive the runs with --archive <file>, or pass --no-archive to purge without one");
      const archive = typeof opts.archive === "string" ? resolve(opts.archive) : null;
      if (archive && existsSync(archive) && !opts.dryRun) throw new BadInputError(`${archive} already exists; an archive is never overwritten, so pass a new file`);
      const nats = await connectTo(opts, "mapflow-admin", "admin");
      const report = await cleanRuns(nats, { before, archive, dryRun: opts.dryRun ?? false, dbPath: resolve(opts.db ?? join(opts.data, "mapflow.sqlite")) });
      await nats.nc.close();
      if (opts.json) return void process.stdout.write(`${JSON.stringify(report)}\n`);
      const lines = report.runs.map((r) => `  ${r.runId}  ${r.dagId}  ${r.state}  ended ${new Date(r.endedAt).toISOString()}  ${r.events} events`);
      const events = report.runs.reduce((a, r) => a + r.events, 0);
      if (report.runs.length === 0) lines.push(`no finished run ended before ${new Date(before).toISOString()}; nothing to clean`);
      else if (report.dryRun) lines.push(`dry run: would clean ${report.runs.length} runs (${events} events); nothing was changed`);
      else {
        lines.push(`cleaned ${report.runs.length} runs (${events} events): ${archive ? `archived to ${archive} and checked (it replays to the same rows)` : "not archived"}; purged from the log, the task logs and the read model; ${report.objectsDeleted} stored values, ${report.artifactsDeleted} artifacts and ${report.kvKeysDeleted} ctx.kv keys deleted`);
      }
      process.stdout.write(`${lines.join("\n")}\n`);
    });

  program
    .command("events <runId>")
    .description("a run's full history in log order: sequence, time, event, task, map index, try, worker, payload")
    .addOption(natsOption()).addOption(credentialsOption())
    .addOption(dataOption())
    .option("--json", "one JSON object a line")
    .option("--follow", "keep printing new events as they are appended (Ctrl-C stops)")
    .addHelpText("after", "\nExample:\n  npx mapflow events 01J9Z8Q4M3N5P7R2S6T8V0W1X3 --follow")
    .action(async (runId: string, opts: { nats?: string; data: string; json?: boolean; follow?: boolean }) => {
      checkRunId(runId);
      const nats = await connectTo(opts, "mapflow-cli", "api");
      if (!(await hasMessageFrom(nats.js, subjects.run(runId), 1))) {
        throw new BadInputError(`run '${runId}' is not in the log of this stack; check the run id and the stack (--data / --nats)`);
      }
      const follow = await followEvents(nats.js, subjects.run(runId), 1, (seq, err) => process.stderr.write(`mapflow: seq ${seq} is not a valid event (${err.message}); skipped\n`));
      if (opts.follow) void untilSignal().then(() => follow.stop());
      for await (const { seq, time, event, caughtUp } of follow) {
        for (const row of event ? historyRows(seq, time, event) : []) process.stdout.write(`${opts.json ? JSON.stringify(row) : renderHistoryRow(row)}\n`);
        if (caughtUp && !opts.follow) break;
      }
      await follow.stop();
      await nats.nc.close();
    });

  program
    .command("replay")
    .description("rebuild the read model from the log (or an archive) into a new SQLite file, optionally as it stood at a sequence or time")
    .addOption(natsOption()).addOption(credentialsOption())
    .addOption(dataOption())
    .requiredOption("--out <file>", "the new SQLite file (must not exist)")
    .option("--until <seq|time>", "stop after this stream sequence, or after the last event stored at or before this ISO time")
    .option("--run <runId>", "only this run's events")
    .option("--from-archive <file>", "read a `db clean` archive instead of the log")
    .option("--json", "print the figures as JSON")
    .addHelpText("after", "\nExample:\n  npx mapflow replay --out /tmp/at-noon.sqlite --until 2026-11-27T12:00:00Z\n  npx mapflow replay --from-archive runs-2025.jsonl --out /tmp/2025.sqlite")
    .action(async (opts: { nats?: string; data: string; out: string; until?: string; run?: string; fromArchive?: string; json?: boolean }) => {
      if (opts.run) checkRunId(opts.run);
      const cut: Cut = { ...parseUntil(opts.until), runId: opts.run };
      let records: AsyncIterable<LogRecord>;
      let close = async () => {};
      if (opts.fromArchive) {
        records = readArchive(resolve(opts.fromArchive));
      } else {
        const nats = await connectTo(opts, "mapflow-replay", "api");
        const to = Math.min(cut.untilSeq ?? Number.MAX_SAFE_INTEGER, await lastLogSeq(nats));
        records = readRecords(nats, { filter: opts.run ? subjects.run(opts.run) : undefined, to });
        close = () => nats.nc.close();
      }
      const done = await replayToFile(records, resolve(opts.out), cut);
      await close();
      const rate = done.events / Math.max(done.ms / 1000, 1e-3);
      const figures = { out: resolve(opts.out), events: done.events, skipped: done.skipped, lastSeq: done.lastSeq, seconds: done.ms / 1000, eventsPerSecond: Math.round(rate) };
      process.stdout.write(opts.json ? `${JSON.stringify(figures)}\n` :
        `replayed ${done.events} events (to seq ${done.lastSeq}) into ${figures.out} in ${figures.seconds.toFixed(2)} s: ${figures.eventsPerSecond} events/s${done.skipped ? `; ${done.skipped} malformed skipped` : ""}\n`);
    });

  program
    .command("audit")
    .description("check the record")
    .addHelpText("after", "\nExample:\n  npx mapflow audit verify --data .mapflow")
    .command("verify")
    .description("rebuild the read model from the log in memory and compare it with the live projection, table by table; check the log itself")
    .addOption(natsOption()).addOption(credentialsOption())
    .addOption(dataOption())
    .option("--db <file>", "the live projection (default <data>/mapflow.sqlite)")
    .option("--json", "print the report as JSON")
    .addHelpText("after", "\nExits 0 when the projection equals the rebuild and the log passes its checks, 1 otherwise.\nExample:\n  npx mapflow audit verify --data .mapflow")
    .action(async (opts: { nats?: string; data: string; db?: string; json?: boolean }) => {
      const nats = await connectTo(opts, "mapflow-audit", "api");
      const db = resolve(opts.db ?? join(opts.data, "mapflow.sqlite"));
      const report = await verifyProjection(nats, db).catch((err: Error) => {
        throw /unable to open|does not exist|SQLITE_CANTOPEN/i.test(err.message) ? new BadInputError(`cannot open the projection ${db} (${err.message}); pass --db <file> or the stack's --data`) : err;
      });
      await nats.nc.close();
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(report)}\n`);
      } else {
        const lines = [`audit: the live projection against the log up to seq ${report.seq} (${report.events} events folded in ${(report.ms / 1000).toFixed(2)} s)`];
        for (const r of report.runs) {
          const same = r.live === r.rebuilt;
          lines.push(`  ${r.runId}  ${(r.rebuilt ?? "absent from the rebuild").slice(0, 16)}  ${same ? "ok" : `DIFFERS (live ${(r.live ?? "absent").slice(0, 16)})`}`);
        }
        const d = report.difference;
        if (d) {
          lines.push(`first difference, table ${d.table} at ${JSON.stringify(d.key)}:`, `  rebuilt from the log: ${JSON.stringify(d.expected ?? null)}`, `  live projection:      ${JSON.stringify(d.actual ?? null)}`);
        }
        for (const f of report.findings) {
          const where = f.taskId ? ` ${f.taskId}${f.mapIndex !== undefined && f.mapIndex >= 0 ? `[${f.mapIndex}]` : ""}${f.try !== undefined ? ` try ${f.try}` : ""}` : "";
          lines.push(`log check at seq ${f.seq}, run ${f.runId}${where}: ${f.problem}`);
        }
        lines.push(report.ok ? `verified: ${report.runs.length} runs, projection == log, log checks pass` : "NOT verified: see above");
        process.stdout.write(`${lines.join("\n")}\n`);
      }
      process.exitCode = report.ok ? EXIT.ok : EXIT.runFailed;
    });
}
