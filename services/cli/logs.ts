/**
 * `mapflow logs <runId> <taskId>`: what one try of a task instance wrote
 * through `ctx.log` (the MF_LOGS stream, one subject per try), by default
 * its latest try; `--follow` prints lines as they are stored until the try
 * ends, as `kubectl logs -f` does.
 */
import type { Command } from "commander";
import { FINISHED_RUN_STATES, type RunState } from "../../libs/core/index.ts";
import type { LogLine } from "../../libs/core/logline.ts";
import { decodeLogLine } from "../../libs/codec/index.ts";
import { BadInputError } from "../../libs/errors.ts";
import { outcomeChunk, outcomeTry } from "../../libs/events/index.ts";
import { STREAMS, subjects } from "../../libs/names/index.ts";
import { followEvents, lastLogSeq, readTryLogs, type Nats } from "../../libs/nats/index.ts";
import { checkRunId, checkTaskId, connectTo, credentialsOption, dataOption, natsOption, untilSignal, wholeNumber } from "./common.ts";
import { currentRun } from "./operate.ts";

/** One stored line as `logs --json` prints it: where it came from, then the line. */
export type LogRow = { runId: string; taskId: string; mapIndex: number; try: number } & LogLine;

export type TryRef = { runId: string; taskId: string; mapIndex: number; try: number };

/** `2026-11-27T07:48:05.282Z INFO  adding one {"x":1}` */
export function renderLogLine(line: LogLine): string {
  const fields = line.fields && Object.keys(line.fields).length ? ` ${JSON.stringify(line.fields)}` : "";
  return `${new Date(line.at).toISOString()} ${line.level.toUpperCase().padEnd(5)} ${line.msg}${fields}`;
}

const where = (taskId: string, mapIndex: number) => `${taskId}${mapIndex >= 0 ? `[${mapIndex}]` : ""}`;

/** States in which an instance's current try has not ended. */
const UNDERWAY = new Set(["scheduled", "queued", "running"]);

/** The try to show, checked against the run: its instance (`--map-index`, required for a mapped task) and its try (default: the latest). */
/**
 * `latest` is 0 for a task that ended without running (skipped, upstream
 * failed): there is nothing to read.
 */
export function pickTry(state: RunState, taskId: string, mapIndex: number | undefined, tryNumber: number | undefined): TryRef & { latest: number; ended: boolean } {
  const task = state.tasks[taskId];
  if (!task) throw new BadInputError(`run ${state.runId} (DAG '${state.dagId}') has no task '${taskId}'; its tasks: ${Object.keys(state.tasks).join(", ")}`);
  const count = task.instances ? task.instances.length : null;
  const range = count ? `0…${count - 1}` : "none yet";
  if (task.mapped && mapIndex === undefined) throw new BadInputError(`task '${taskId}' is mapped; say which instance with --map-index N (its map indexes: ${range})`);
  if (!task.mapped && mapIndex !== undefined && mapIndex !== -1) throw new BadInputError(`task '${taskId}' is not mapped: its one instance is --map-index -1, the default`);
  const index = mapIndex ?? -1;
  if (!task.instances) {
    if (task.state !== "pending") return { runId: state.runId, taskId, mapIndex: index, try: 1, latest: 0, ended: true };
    throw new BadInputError(`task '${taskId}' of run ${state.runId} has not ${task.mapped ? "expanded" : "been reached"} yet, so it has no lines yet; try again once it runs`);
  }
  const instance = task.instances.find((i) => i.mapIndex === index);
  if (!instance) throw new BadInputError(`task '${taskId}' of run ${state.runId} has no instance with map index ${index}; its map indexes: ${range}`);
  const latest = instance.try;
  if (tryNumber !== undefined && tryNumber > latest) {
    throw new BadInputError(`${where(taskId, index)} of run ${state.runId} has had ${latest} ${latest === 1 ? "try" : "tries"}; --try takes 1 to ${latest}`);
  }
  const n = tryNumber ?? latest;
  const ended = n < latest || !UNDERWAY.has(instance.state) || FINISHED_RUN_STATES.has(state.state);
  return { runId: state.runId, taskId, mapIndex: index, try: n, latest, ended };
}

/**
 * Resolves once the try has ended: its outcome is in the log (from the
 * worker, or the coordinator's when the work was lost), an operator marked
 * the instance, or the run finished. Watches the log after `fromSeq`.
 */
async function tryEnded(nats: Nats, ref: TryRef, fromSeq: number): Promise<{ stop(): Promise<void>; ended: Promise<void> }> {
  const filter = [
    subjects.instanceOutcome(ref.runId, ref.taskId, ref.mapIndex), subjects.chunkOutcomes(ref.runId, ref.taskId, outcomeChunk(ref.mapIndex)),
    subjects.coordinator(ref.runId), subjects.requests(ref.runId),
  ];
  const follow = await followEvents(nats.js, filter, fromSeq, () => {});
  const ended = (async () => {
    for await (const { event } of follow) {
      if (!event) continue;
      if (outcomeTry(event, ref.taskId, ref.mapIndex) === ref.try) return;
      if (event.type === "InstanceMarked" && event.taskId === ref.taskId && event.mapIndex === ref.mapIndex) return;
      if (event.type === "RunFinished") return;
    }
  })();
  return { stop: () => follow.stop(), ended };
}

/** How many lines the stream holds for one try now. */
async function storedLines(nats: Nats, subject: string): Promise<number> {
  const info = await nats.jsm.streams.info(STREAMS.logs, { subjects_filter: subject });
  return Object.values(info.state.subjects ?? {}).reduce((sum, n) => sum + n, 0);
}

/** How long, once the try has ended, the lines it stored may take to arrive before the reader gives up on them. */
const DRAIN_MS = 5000;

/** Prints a try's lines as they are stored, from its first, until it ends (or Ctrl-C). */
async function followTry(nats: Nats, ref: TryRef, fromSeq: number, write: (line: LogLine) => void): Promise<void> {
  const subject = subjects.tryLog(ref.runId, ref.taskId, ref.mapIndex, ref.try);
  const consumer = await nats.js.consumers.get(STREAMS.logs, { filter_subjects: subject });
  const messages = await consumer.consume();
  const end = await tryEnded(nats, ref, fromSeq);
  let printed = 0;
  let target = Number.POSITIVE_INFINITY;
  const reading = (async () => {
    try {
      for await (const msg of messages) {
        write(decodeLogLine(msg.data));
        if (++printed >= target) break;
      }
    } finally {
      await messages.close();
    }
  })();
  const stopped = await Promise.race([end.ended.then(() => false), untilSignal().then(() => true), reading.then(() => true)]);
  await end.stop();
  if (stopped) {
    await messages.close();
  } else {
    // The worker stores a try's lines before its outcome (waiting up to 2 s): read what is stored now, then stop.
    target = await storedLines(nats, subject);
    const timer = setTimeout(() => void messages.close(), DRAIN_MS);
    if (printed >= target) await messages.close();
    await reading;
    clearTimeout(timer);
  }
  await reading;
}

export function logCommands(program: Command): void {
  program
    .command("logs <runId> <taskId>")
    .description("what a task instance wrote through ctx.log, one try (default: the latest); --follow prints new lines until the try ends")
    .option("--map-index <n>", "the instance: required for a mapped task; -1 (the default) for an unmapped one", wholeNumber("--map-index", -1))
    .option("--try <n>", "the try (default: the latest)", wholeNumber("--try", 1))
    .option("--follow", "keep printing lines as they are stored until the try ends (Ctrl-C stops)")
    .option("--json", "one JSON object a line: { runId, taskId, mapIndex, try, at, level, msg, fields? } (at: epoch ms)")
    .addOption(natsOption()).addOption(credentialsOption())
    .addOption(dataOption())
    .addHelpText("after", "\nLines are kept 30 days.\nExample:\n  npx mapflow logs 01J9Z8Q4M3N5P7R2S6T8V0W1X3 add --map-index 2 --follow")
    .action(async (runId: string, taskId: string, opts: { mapIndex?: number; try?: number; follow?: boolean; json?: boolean; nats?: string; data: string }) => {
      checkRunId(runId);
      checkTaskId(taskId);
      const nats = await connectTo(opts, "mapflow-cli", "api");
      try {
        // Whatever ends the try after the fold is in the log after this.
        const mark = await lastLogSeq(nats);
        const state = await currentRun(nats, runId);
        const picked = pickTry(state, taskId, opts.mapIndex, opts.try);
        const ref: TryRef = { runId, taskId, mapIndex: picked.mapIndex, try: picked.try };
        const write = (line: LogLine) => {
          process.stdout.write(`${opts.json ? JSON.stringify({ ...ref, ...line } satisfies LogRow) : renderLogLine(line)}\n`);
        };
        if (picked.latest === 0) {
          if (!opts.json) process.stderr.write(`mapflow: task '${taskId}' of run ${runId} did not run (${state.tasks[taskId]!.state}), so it wrote no lines\n`);
          return;
        }
        const name = `${where(taskId, ref.mapIndex)} try ${ref.try}`;
        if (!opts.json && opts.try === undefined && picked.latest > 1) {
          process.stderr.write(`mapflow: ${name}, the latest; --try 1 to ${picked.latest - 1} show the earlier ones\n`);
        }
        if (opts.follow && !picked.ended) {
          await followTry(nats, ref, mark + 1, write);
          return;
        }
        const lines = (await readTryLogs(nats, runId, taskId, ref.mapIndex, ref.try))[0]?.lines ?? [];
        for (const line of lines) write(line);
        if (lines.length === 0 && !opts.json) process.stderr.write(`mapflow: ${name} of run ${runId} stored no lines${picked.ended ? "" : " yet (--follow waits for them)"}\n`);
      } finally {
        await nats.nc.close();
      }
    });
}
