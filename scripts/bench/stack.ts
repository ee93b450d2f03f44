/**
 * A mapflow stack for `make bench`: its own nats-server (file storage, the
 * default `replicated` config, as in production), and the coordinator, the
 * projector and N workers as separate processes started through the real
 * `mapflow` command. It triggers runs and times them from the log, and reads
 * each process's peak RSS from /proc (VmHWM), so memory is the high-water
 * mark of the whole process life, not a sample that may miss the peak.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import { STREAMS, subjects } from "../../libs/names/index.ts";
import { connectNats, ensureStreams, followEvents, startNatsServer, type Nats, type NatsServer } from "../../libs/nats/index.ts";
import { registeredDag, requestRun } from "../../services/cli/runs.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const BIN = join(ROOT, "bin", "mapflow.mjs");
export const BENCH_DAGS = join(ROOT, "scripts", "bench", "dags");
export const EXAMPLE_DAGS = join(ROOT, "examples");

type Service = { readonly kind: string; readonly child: ChildProcess; readonly exited: Promise<void> };

export type StackOptions = {
  workers: number;
  dags: string;
  concurrency?: number;
  env?: NodeJS.ProcessEnv;
  /** Flags for each service's node, e.g. `--cpu-prof` (refused in NODE_OPTIONS). */
  nodeArgs?: readonly string[];
};

export type CpuSeconds = { natsServer: number; coordinator: number; projector: number; workers: number };

export type PeakRss = { coordinator: number; projector: number; worker: number };

export type Finished = { readonly runId: string; readonly ms: number };

/** Peak resident set (MiB) of a live process, from the kernel's own high-water mark. */
function peakRssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = /^VmHWM:\s+(\d+) kB$/m.exec(status);
  if (!kb) throw new Error(`no VmHWM in /proc/${pid}/status`);
  return Number(kb[1]) / 1024;
}

/** CPU time (user + system, seconds) a live process has used so far, from /proc. */
function cpuSeconds(pid: number): number {
  // The fields after the command name (which may hold spaces) start after its closing parenthesis.
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  const ticksPerSecond = 100; // USER_HZ: 100 on every Linux Node runs on
  return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond;
}

/** Starts one service; its warnings and errors (MAPFLOW_LOG_LEVEL=warn) go to the bench's stderr. */
function startService(kind: string, args: string[], options: StackOptions): Promise<Service> {
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), BIN, kind, ...args], {
    cwd: ROOT, stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, MAPFLOW_LOG_LEVEL: "warn", ...options.env },
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`bench: ${kind} was not ready in 60 s`));
    }, 60_000);
    const lines = createInterface({ input: child.stdout! });
    lines.on("line", (line) => {
      if (!/ ready$/.test(line)) return;
      clearTimeout(timer);
      resolve({ kind, child, exited });
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`bench: ${kind} exited with ${code} before it was ready`));
    });
  });
}

export class Stack {
  private constructor(
    readonly nats: Nats,
    private readonly server: NatsServer,
    private readonly dir: string,
    private readonly services: Service[],
  ) {}

  static async start(options: StackOptions): Promise<Stack> {
    const dir = mkdtempSync(join(tmpdir(), "mapflow-bench-"));
    const server = await startNatsServer({ storeDir: join(dir, "nats") });
    const nats = await connectNats(server.url, "bench", server.auth("admin"));
    const services: Service[] = [];
    const stack = new Stack(nats, server, dir, services);
    try {
      await ensureStreams(nats);
      const common = ["--nats", server.url, "--credentials", server.credentialsFile, "--data", join(dir, "data")];
      services.push(await startService("coordinator", common, options));
      services.push(await startService("projector", common, options));
      // The worker's own default concurrency unless told: the figures are what a user gets.
      const concurrency = options.concurrency ? ["--concurrency", String(options.concurrency)] : [];
      const workers = Array.from({ length: options.workers }, () => startService("worker", [...common, "--dags", options.dags, ...concurrency], options));
      services.push(...(await Promise.all(workers)));
    } catch (err) {
      await stack.stop();
      throw err;
    }
    return stack;
  }

  /** Triggers a run and resolves when the coordinator records its success, with the time from trigger to end. */
  async run(dagId: string, conf: Record<string, unknown>, timeoutMs = 30 * 60_000): Promise<Finished> {
    const dag = await registeredDag(this.nats, dagId);
    const started = Date.now();
    const runId = await requestRun(this.nats, { dagId, version: dag.version, spec: dag.spec, conf });
    // Only the coordinator's subject: a reader of every outcome would compete with the run it times.
    const follow = await followEvents(this.nats.js, subjects.coordinator(runId));
    const timer = setTimeout(() => void follow.stop(), timeoutMs);
    try {
      const failures: string[] = [];
      for await (const { event } of follow) {
        if (event?.type === "TaskFailed") failures.push(`${event.taskId}: ${event.error.message}`);
        if (event?.type !== "RunFinished") continue;
        // A figure is only worth printing for a run that did its work.
        if (event.state !== "success") throw new Error(`bench: run ${runId} of ${dagId} ended ${event.state}${failures.length ? ` (${failures.join("; ")})` : "; see the services' output above"}`);
        return { runId, ms: event.at - started };
      }
    } finally {
      clearTimeout(timer);
      await follow.stop();
    }
    throw new Error(`bench: run ${runId} of ${dagId} did not finish within ${timeoutMs / 1000} s`);
  }

  /** Peak RSS (MiB) of each service so far, the workers as their largest. */
  peakRss(): PeakRss {
    const of = (kind: string) => Math.max(...this.services.filter((s) => s.kind === kind).map((s) => peakRssMiB(s.child.pid!)));
    return { coordinator: of("coordinator"), projector: of("projector"), worker: of("worker") };
  }

  /** CPU seconds each process has used so far: nats-server, coordinator, projector, and the workers together. */
  cpuSeconds(): CpuSeconds {
    const of = (kind: string) => this.services.filter((s) => s.kind === kind).reduce((sum, s) => sum + cpuSeconds(s.child.pid!), 0);
    return { natsServer: cpuSeconds(this.server.process.pid!), coordinator: of("coordinator"), projector: of("projector"), workers: of("worker") };
  }

  /** The event log's last sequence. */
  async lastSeq(): Promise<number> {
    return (await this.nats.jsm.streams.info(STREAMS.events)).state.last_seq;
  }

  async stop(): Promise<void> {
    for (const s of this.services) s.child.kill("SIGTERM");
    await Promise.all(this.services.map((s) => Promise.race([s.exited, new Promise((r) => setTimeout(r, 10_000)).then(() => s.child.kill("SIGKILL"))])));
    await this.nats.nc.close();
    await this.server.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
