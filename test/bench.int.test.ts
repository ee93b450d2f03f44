// The short form of `make bench` (N = 1,000) that CI runs: every section measures something real and
// lands in the JSON. It checks the shape and that the runs did their work, never how fast they were.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, tempDir } from "./helpers/index.ts";

test("make bench --quick prints the table and writes every figure to the JSON", () => {
  const dir = tempDir("mapflow-bench-test-");
  try {
    const out = join(dir.path, "results.json");
    const bench = spawnSync(process.execPath, ["--import", "tsx", "scripts/bench.ts", "--quick", "--out", out], { cwd: ROOT, encoding: "utf8", timeout: 300_000 });
    assert.equal(bench.status, 0, `bench failed:\n${bench.stdout}\n${bench.stderr}`);
    for (const section of ["floor:", "fan-out -> reduce", "latency:", "memory:", "replay:", "its fold and SQLite writes alone", "ui: a page of 100", "scaling at", "event log appends", "targets (issue 5):"]) {
      assert.ok(bench.stdout.includes(section), `the table has no '${section}' section:\n${bench.stdout}`);
    }
    const results = JSON.parse(readFileSync(out, "utf8"));
    assert.ok(results.machine.cpus >= 1 && /^v\d+/.test(results.machine.node) && /nats-server/.test(results.machine.natsServer));
    assert.ok(results.floor.loopsPerSecond > 0);
    assert.deepEqual(results.fanout.map((r: { n: number; workers: number }) => [r.n, r.workers]), [[1000, 1], [1000, 2]]);
    for (const r of results.fanout) assert.ok(r.instancesPerSecond > 0 && r.ofFloor > 0 && r.wallMs > 0);
    assert.equal(results.latency.perRun.length, 5);
    assert.ok(results.latency.p50Ms <= results.latency.p99Ms);
    for (const service of ["coordinator", "worker", "projector"]) assert.ok(results.memory.peakRssMiB[service] > 10, `${service} RSS`);
    // The replayed log holds at least one outcome per instance of the timed run.
    assert.ok(results.replay.events >= 1000 && results.replay.eventsPerSecond > 0);
    assert.ok(results.replay.readOnlyPerSecond > 0, "the read-only floor of replay is measured");
    assert.ok(results.replay.foldOnlyPerSecond > 0, "the fold and writes of replay are measured alone");
    assert.ok(results.replay.uiPageMs.instances >= 1000 && results.replay.uiPageMs.firstPage > 0, "the UI page reads are timed on the timed run");
    assert.deepEqual(results.scaling.table.map((r: { workers: number }) => r.workers), [1, 2]);
    assert.ok(results.durability.appendsPerSecond.replicated > 0 && results.durability.appendsPerSecond.durable > 0);
    assert.equal(results.huge, null);
  } finally {
    dir.remove();
  }
});
