import { test } from "node:test";
import assert from "node:assert/strict";
import { WORKER_HEAP_GROWING_PERCENT, workerHeapFlag } from "../services/worker/heap.ts";

test("a worker keeps its heap's growth tight unless its node was started with its own", () => {
  assert.equal(workerHeapFlag([]), `--heap-growing-percent=${WORKER_HEAP_GROWING_PERCENT}`);
  assert.equal(workerHeapFlag(["--import", "tsx", "--max-semi-space-size=8"]), `--heap-growing-percent=${WORKER_HEAP_GROWING_PERCENT}`);
  // V8 takes its flags with dashes or underscores; either is the user's choice, kept.
  assert.equal(workerHeapFlag(["--heap-growing-percent=100"]), undefined);
  assert.equal(workerHeapFlag(["--heap_growing_percent=100"]), undefined);
});
