// The short form of `make chaos` for CI: a fan-out of 5,000 plus smaller runs while workers, the
// coordinator, the projector and nats-server are killed (-9) and restarted; nothing lost or duplicated.
import { test } from "node:test";
import assert from "node:assert/strict";
import { chaos } from "../scripts/chaos.ts";

test("chaos (short): kills at random moments lose nothing, duplicate nothing, and the projection equals a replay", { timeout: 300_000 }, async () => {
  const result = await chaos({ seconds: 20, fanout: 5000 });
  assert.ok(result.kills >= 3, result.line);
  assert.ok(result.instances >= 5000, result.line);
  assert.equal(result.lost, 0, result.line);
  assert.equal(result.duplicated, 0, result.line);
  assert.ok(result.projectionMatches, result.line);
});
