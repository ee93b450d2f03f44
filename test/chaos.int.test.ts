// The short forms of `make chaos` for CI: a fan-out of 5,000 plus smaller runs while workers, the
// coordinator, the projector and nats-server are killed (-9) and restarted — on one server, then on a
// 3-node cluster with one node killed at a time; nothing lost or duplicated.
import { test } from "node:test";
import assert from "node:assert/strict";
import { chaos, type ChaosResult } from "../scripts/chaos.ts";

function assertClean(result: ChaosResult): void {
  assert.ok(result.kills >= 3, result.line);
  assert.ok(result.instances >= 5000, result.line);
  assert.equal(result.lost, 0, result.line);
  assert.equal(result.duplicated, 0, result.line);
  assert.ok(result.projectionMatches, result.line);
}

test("chaos (short): kills at random moments lose nothing, duplicate nothing, and the projection equals a replay", { timeout: 300_000 }, async () => {
  assertClean(await chaos({ seconds: 20, fanout: 5000 }));
});

test("chaos (short, 3-node cluster): the same, with cluster nodes killed one at a time", { timeout: 400_000 }, async () => {
  assertClean(await chaos({ seconds: 30, fanout: 5000, cluster: true }));
});
