import { test } from "node:test";
import assert from "node:assert/strict";
import { waitForRun } from "../../services/cli/runs.ts";
import { cli } from "../helpers/index.ts";
import { STREAMS } from "../../libs/names/index.ts";
import { rig, trigger, waitForEvent, runEvents } from "../helpers/faults.ts";

test("debug quorum", async () => {
  const r = await rig({ cluster: true });
  const procs: any[] = [];
  try {
    procs.push(await r.start("coordinator", ["--lease-ms", "2000"]));
    procs.push(await r.start("projector"));
    procs.push(await r.start("worker", ["--concurrency", "4", "--ack-wait-ms", "3000"]));
    const runId = await trigger(r.nats, "slow", { ms: 1500 });
    await waitForEvent(r.nats, runId, (e) => e.type === "InstanceStarted");
    console.log("killing", Date.now());
    await r.cluster!.stop(1, "SIGKILL");
    await r.cluster!.stop(2, "SIGKILL");
    const refused = await cli(["trigger", "slow", "--nats", r.urls], { timeoutMs: 60_000 });
    console.log("refused", refused.code, refused.stderr.slice(0, 300), Date.now());
    await r.cluster!.start(1);
    console.log("restarted", Date.now());
    const t = setTimeout(async () => {
      console.log("TIMEOUT; dumping");
      for (const p of procs) console.log("=====", p.spawnargs.slice(-8).join(" "), "\n", p.output().slice(-12000).split("\n").map((l: string) => l.replace(/"stack":"[^"]*"/g, "")).join("\n"));
      for (const c of await r.nats.jsm.consumers.list(STREAMS.work).next()) console.log("CONSUMER", JSON.stringify({ name: c.name, delivered: c.delivered, ack_floor: c.ack_floor, num_ack_pending: c.num_ack_pending, num_pending: c.num_pending, num_waiting: c.num_waiting, num_redelivered: c.num_redelivered, cluster: c.cluster }));
      try { const ev = await runEvents(r.nats, runId); console.log(ev.map((e) => `${e.seq} ${e.event.type} ${(e.event as any).taskId ?? ""} ${(e.event as any).mapIndex ?? ""}`).join("\n")); } catch (e) { console.log("events failed", e); }
    }, 60_000);
    const state = await waitForRun(r.nats, runId);
    clearTimeout(t);
    console.log("done", state.state, Date.now());
  } finally {
    await r.close();
  }
});
