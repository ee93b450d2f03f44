/** `mapflow workers`: the live workers, from their heartbeats in the mf-workers bucket. */
import type { Command } from "commander";
import type { WorkerPresence } from "../../libs/core/index.ts";
import { readWorkers, WORKER_TTL_MS } from "../../libs/nats/index.ts";
import { connectTo, dataOption, natsOption, credentialsOption, print } from "./common.ts";

function ago(ms: number): string {
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const minutes = Math.floor(ms / 60_000);
  return minutes < 60 ? `${minutes} min` : `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

export function renderWorkers(workers: readonly WorkerPresence[], now: number): string {
  if (workers.length === 0) return `no live workers (none wrote a heartbeat in the last ${WORKER_TTL_MS / 1000} s)`;
  const rows = [
    ["name", "host", "pid", "queues", "concurrency", "running", "up", "last beat"],
    ...workers.map((w) => [w.name, w.host, String(w.pid), w.queues.join(","), String(w.concurrency), String(w.running), ago(now - w.startedAt), `${ago(w.ageMs)} ago`]),
  ];
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const lines = rows.map((r) => `  ${r.map((cell, c) => cell.padEnd(widths[c]!)).join("  ").trimEnd()}`);
  return [`${workers.length} live worker${workers.length === 1 ? "" : "s"}`, ...lines].join("\n");
}

export function workerCommands(program: Command): void {
  program
    .command("workers")
    .description("list the live workers: name, host, pid, queues, concurrency, tries running, and how long ago each last wrote its heartbeat")
    .option("--json", "print { workers: [{ name, host, pid, queues, concurrency, running, startedAt, at, lastBeatAt, ageMs, key }] }")
    .addOption(natsOption()).addOption(credentialsOption())
    .addOption(dataOption())
    .addHelpText("after", `\nA worker writes a heartbeat every few seconds; one silent for ${WORKER_TTL_MS / 1000} s drops out, and one that stops leaves at once.\nExample:\n  npx mapflow workers --json`)
    .action(async (opts: { json?: boolean; nats?: string; data: string }) => {
      const nats = await connectTo(opts, "mapflow-cli", "api");
      const workers = await readWorkers(nats);
      await nats.nc.close();
      print(Boolean(opts.json), { workers }, renderWorkers(workers, Date.now()));
    });
}
