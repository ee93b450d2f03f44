/**
 * `make chaos`: a mixed workload (a wide fan-out, slow tasks, retries) on
 * real processes while workers, the coordinator, the projector and
 * nats-server are killed (-9) and restarted at random moments. With
 * `--cluster` the stack runs on a 3-node cluster and the server kill takes
 * down one node at a time (any of them, the stream leader included). At the end
 * every run must have finished successfully with exactly one outcome per
 * instance and try, one expansion per task, one terminal event, and the
 * projection must equal a fresh replay. Prints one summary line; exits 1
 * if anything was lost or duplicated.
 *
 *   node --import tsx scripts/chaos.ts [--seconds 300] [--fanout 5000] [--cluster]
 */
import { isDeepStrictEqual } from "node:util";
import { parseArgs } from "node:util";
import { fold } from "../libs/core/index.ts";
import { stopProcess } from "../test/helpers/index.ts";
import { whileJetStreamRecovers } from "../libs/nats/index.ts";
import { outcomeCounts, projectionAndReplay, rig, runEvents, trigger as triggerNow, type Proc, type Rig } from "../test/helpers/faults.ts";

/** A trigger may land while a cluster node is down and a stream elects its leader: try again then. */
const trigger: typeof triggerNow = (nats, dagId, conf) => whileJetStreamRecovers(() => triggerNow(nats, dagId, conf), 60_000);

export type ChaosResult = { runs: number; instances: number; kills: number; lost: number; duplicated: number; projectionMatches: boolean; line: string };

/** A small seeded generator, so a chaos run can be repeated (`--seed`). */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

export async function chaos(options: { seconds: number; fanout: number; seed?: number; cluster?: boolean; say?: (line: string) => void }): Promise<ChaosResult> {
  const say = options.say ?? (() => {});
  const rand = random(options.seed ?? Date.now());
  const r: Rig = await rig({ cluster: options.cluster });
  const workerArgs = ["--concurrency", "16", "--ack-wait-ms", "2000", "--heartbeat-ms", "500"];
  const services: Record<string, Proc> = {
    coordinator: await r.start("coordinator", ["--lease-ms", "2000"]),
    projector: await r.start("projector"),
    workerA: await r.start("worker", workerArgs),
    workerB: await r.start("worker", workerArgs),
  };
  const restart = async (name: string) => {
    if (name === "coordinator") services[name] = await r.start("coordinator", ["--lease-ms", "2000"]);
    else if (name === "projector") services[name] = await r.start("projector");
    else services[name] = await r.start("worker", workerArgs);
  };
  const runs: string[] = [];
  let kills = 0;
  try {
    const deadline = Date.now() + options.seconds * 1000;
    runs.push(await trigger(r.nats, "wide_faults", { n: options.fanout }));
    while (Date.now() < deadline) {
      // Keep work coming, and hit something now and then.
      if (runs.length < 4 + (options.seconds * 1000 - (deadline - Date.now())) / 4000) {
        const pick = rand();
        runs.push(await trigger(r.nats, pick < 0.4 ? "slow" : pick < 0.8 ? "flaky_faults" : "wide_faults", pick < 0.4 ? { ms: 200 } : { n: 500 }));
      }
      await new Promise((res) => setTimeout(res, 500 + rand() * 2500));
      const target = ["coordinator", "projector", "workerA", "workerB", "nats-server"][Math.floor(rand() * 5)]!;
      kills++;
      if (target === "nats-server" && r.cluster) {
        const node = Math.floor(rand() * 3);
        say(`chaos: kill -9 cluster node ${r.cluster.nodes[node]!.name}`);
        await r.cluster.stop(node, "SIGKILL");
        await new Promise((res) => setTimeout(res, 1000 + rand() * 4000));
        await r.cluster.start(node);
      } else if (target === "nats-server") {
        say("chaos: kill -9 nats-server");
        await r.restartServer("SIGKILL");
      } else {
        say(`chaos: kill -9 ${target}`);
        await stopProcess(services[target]!, "SIGKILL");
        await new Promise((res) => setTimeout(res, rand() * 1500));
        await restart(target);
      }
    }
    say("chaos: waiting for every run to finish");
    // Settle: every run must end; give the system the ack deadline and some to spare.
    const settleBy = Date.now() + 180_000;
    let lost = 0;
    let duplicated = 0;
    let instances = 0;
    for (const runId of runs) {
      let state = fold((await runEvents(r.nats, runId)).map((e) => e.event));
      while ((!state || (state.state !== "success" && state.state !== "failed")) && Date.now() < settleBy) {
        await new Promise((res) => setTimeout(res, 500));
        state = fold((await runEvents(r.nats, runId)).map((e) => e.event));
      }
      const events = (await runEvents(r.nats, runId)).map((e) => e.event);
      if (state?.state !== "success") {
        lost++;
        say(`chaos: run ${runId} ended ${state?.state ?? "never requested"}`);
      }
      for (const task of Object.values(state?.tasks ?? {})) instances += (task.instances ?? []).length;
      const counts = await outcomeCounts(r.nats, runId);
      duplicated += [...counts.values()].filter((n) => n > 1).length;
      const starts = new Map<string, number>();
      for (const e of events) if (e.type === "TaskExpanded" || e.type === "TaskScheduled") starts.set(e.taskId, (starts.get(e.taskId) ?? 0) + 1);
      duplicated += [...starts.values()].filter((n) => n > 1).length;
      if (events.filter((e) => e.type === "RunFinished").length > 1) duplicated++;
    }
    const { live, replay } = await projectionAndReplay(r.nats, r.db, 120_000);
    const projectionMatches = isDeepStrictEqual(live, replay);
    const line = `chaos: ${runs.length} runs, ${instances} instances, ${kills} kills, lost ${lost}, duplicated ${duplicated}, projection ${projectionMatches ? "==" : "!="} replay`;
    return { runs: runs.length, instances, kills, lost, duplicated, projectionMatches, line };
  } finally {
    await r.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { seconds: { type: "string", default: "300" }, fanout: { type: "string", default: "5000" }, seed: { type: "string" }, cluster: { type: "boolean", default: false } } });
  const result = await chaos({
    seconds: Number(values.seconds), fanout: Number(values.fanout), seed: values.seed ? Number(values.seed) : undefined, cluster: values.cluster,
    say: (line) => process.stderr.write(`${line}\n`),
  });
  process.stdout.write(`${result.line}\n`);
  process.exit(result.lost === 0 && result.duplicated === 0 && result.projectionMatches ? 0 : 1);
}
