/**
 * `mapflow artifacts`: a run's artifacts as the log records them (folded
 * from the run's events, so no read model is needed), and downloading one
 * from the artifacts object store.
 */
import type { Command } from "commander";
import { createWriteStream, rmSync } from "node:fs";
import { resolve } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { runArtifacts, type ArtifactListing, type RunState } from "../../libs/core/index.ts";
import { BadInputError } from "../../libs/errors.ts";
import { isTaskId } from "../../libs/names/index.ts";
import { artifactStore, readArtifact, type Nats } from "../../libs/nats/index.ts";
import { checkRunId, checkTaskId, connectTo, credentialsOption, dataOption, natsOption, wholeNumber } from "./common.ts";
import { currentRun } from "./operate.ts";

function checkTask(state: RunState, taskId: string): void {
  if (!isTaskId(taskId) || !state.tasks[taskId]) {
    throw new BadInputError(`run ${state.runId} (DAG '${state.dagId}') has no task '${taskId}'; its tasks: ${Object.keys(state.tasks).join(", ")}`);
  }
}

function size(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

export function renderArtifacts(runId: string, list: readonly ArtifactListing[]): string {
  if (list.length === 0) return `run ${runId}: no artifacts`;
  const rows = list.map((a) => [`${a.taskId}${a.mapIndex >= 0 ? `[${a.mapIndex}]` : ""}`, `#${a.try}`, a.name, a.contentType, size(a.bytes)]);
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const lines = rows.map((r) => `  ${r.map((cell, c) => cell.padEnd(widths[c]!)).join("  ").trimEnd()}`);
  return [`run ${runId}: ${list.length} artifact${list.length === 1 ? "" : "s"}`, ...lines].join("\n");
}

/** The artifact `get` names: the instance's, by name, of the given try or else the latest try that wrote it. */
export function pickArtifact(state: RunState, taskId: string, name: string, mapIndex: number | undefined, tryNumber: number | undefined): ArtifactListing {
  checkTask(state, taskId);
  const task = state.tasks[taskId]!;
  if (task.mapped && mapIndex === undefined) throw new BadInputError(`task '${taskId}' is mapped; say which instance with --map-index N`);
  const index = mapIndex ?? -1;
  const ofInstance = runArtifacts(state, { taskId, mapIndex: index });
  const named = ofInstance.filter((a) => a.name === name && (tryNumber === undefined || a.try === tryNumber));
  if (named.length === 0) {
    const where = `${taskId}${index >= 0 ? `[${index}]` : ""}${tryNumber !== undefined ? ` try ${tryNumber}` : ""}`;
    const known = ofInstance.map((a) => `${a.name} (try ${a.try})`);
    throw new BadInputError(`${where} of run ${state.runId} has no artifact '${name}'; ${known.length ? `it has: ${known.join(", ")}` : "it stored none"}`);
  }
  return named[named.length - 1]!;
}

/** Writes an artifact's bytes to a file ('-': stdout); a download cut short leaves no file behind. */
async function download(nats: Nats, artifact: ArtifactListing, out: string): Promise<void> {
  const result = await readArtifact(await artifactStore(nats), artifact.object);
  const body = Readable.fromWeb(result.data as import("node:stream/web").ReadableStream<Uint8Array>);
  try {
    await pipeline(body, out === "-" ? process.stdout : createWriteStream(out), { end: out !== "-" });
    // The client checks the object's digest as the last chunk arrives.
    const failed = await result.error;
    if (failed) throw failed;
  } catch (err) {
    if (out !== "-") rmSync(out, { force: true });
    throw err;
  }
}

export function artifactCommands(program: Command): void {
  const artifacts = program
    .command("artifacts")
    .description("list a run's artifacts (files its tasks stored with ctx.artifact), or download one with 'artifacts get'")
    .addHelpText("after", "\nExample:\n  npx mapflow artifacts 01J… --json\n  npx mapflow artifacts get 01J… train model.bin --map-index 3 --out model-3.bin");

  artifacts
    .command("list <runId>", { isDefault: true })
    .description("list a run's artifacts: task, map index, try, name, content type, size")
    .option("--task <taskId>", "only this task's")
    .option("--map-index <n>", "only this instance's (-1 for an unmapped task)", wholeNumber("--map-index", -1))
    .option("--json", "print { runId, dagId, artifacts: [{ taskId, mapIndex, try, name, contentType, bytes, object }] }")
    .addOption(natsOption()).addOption(credentialsOption())
    .addOption(dataOption())
    .addHelpText("after", "\nExample:\n  npx mapflow artifacts 01J… --task train --json")
    .action(async (runId: string, opts: { task?: string; mapIndex?: number; json?: boolean; nats?: string; data: string }) => {
      checkRunId(runId);
      if (opts.task !== undefined) checkTaskId(opts.task);
      const nats = await connectTo(opts, "mapflow-cli", "api");
      const state = await currentRun(nats, runId);
      await nats.nc.close();
      if (opts.task !== undefined) checkTask(state, opts.task);
      const list = runArtifacts(state, { taskId: opts.task, mapIndex: opts.mapIndex });
      process.stdout.write(`${opts.json ? JSON.stringify({ runId: state.runId, dagId: state.dagId, artifacts: list }) : renderArtifacts(state.runId, list)}\n`);
    });

  artifacts
    .command("get <runId> <taskId> <name>")
    .description("download one artifact: of an instance (--map-index for a mapped task), of its latest try that wrote it unless --try")
    .requiredOption("--out <file>", "where to write it ('-': standard output)")
    .option("--map-index <n>", "the instance (required for a mapped task)", wholeNumber("--map-index", -1))
    .option("--try <n>", "the try that wrote it (default: the latest)", wholeNumber("--try", 1))
    .option("--json", "print what was written as JSON")
    .addOption(natsOption()).addOption(credentialsOption())
    .addOption(dataOption())
    .addHelpText("after", "\nExample:\n  npx mapflow artifacts get 01J… train model.bin --map-index 3 --out model-3.bin")
    .action(async (runId: string, taskId: string, name: string, opts: { out: string; mapIndex?: number; try?: number; json?: boolean; nats?: string; data: string }) => {
      checkRunId(runId);
      checkTaskId(taskId);
      const nats = await connectTo(opts, "mapflow-cli", "api");
      const artifact = pickArtifact(await currentRun(nats, runId), taskId, name, opts.mapIndex, opts.try);
      const out = opts.out === "-" ? "-" : resolve(opts.out);
      await download(nats, artifact, out);
      await nats.nc.close();
      if (out === "-") return;
      process.stdout.write(opts.json ? `${JSON.stringify({ ...artifact, out })}\n` : `wrote ${artifact.name} (${artifact.contentType}, ${size(artifact.bytes)}, try ${artifact.try}) to ${out}\n`);
    });
}
