// Which failures retry, and mapflow's error classes across the copies of the SDK a DAG file may load.
import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadDags } from "../libs/dags/index.ts";
import { failureOf } from "../libs/core/index.ts";
import { ArtifactError, NonRetryableError } from "../libs/sdk/index.ts";
import type { TaskContext } from "../libs/sdk/types.ts";
import { tempDir } from "./helpers/index.ts";

test("errors of a DAG file loaded as CommonJS (no package.json beside it) and of the worker check as the same classes", async () => {
  const dir = tempDir();
  try {
    // A .ts file with no "type": "module" above it loads as CommonJS, with its own copy of the SDK.
    writeFileSync(join(dir.path, "gone.ts"), [
      'import { dag, task, ArtifactError, NonRetryableError } from "mapflow";',
      'export default dag({ id: "gone" }, () => {',
      '  task("load", () => { throw new NonRetryableError("the input is gone"); })({});',
      // A refusal the worker's copy throws, as a task would check it.
      '  task("store", ({ refusal }: { refusal: unknown }) => refusal instanceof ArtifactError)({ refusal: null });',
      "});",
    ].join("\n"));
    const bag = await loadDags(dir.path);
    assert.deepEqual(bag.errors, []);
    const run = async (taskId: string, args: Record<string, unknown>) => {
      const operator = bag.dags.get("gone")!.dag.operators.get(taskId)!;
      if (operator.kind !== "function") throw new Error("a function task was expected");
      return operator.fn(args, {} as TaskContext);
    };
    const thrown = await run("load", {}).then(() => null, (err: unknown) => err);
    assert.ok(thrown instanceof NonRetryableError);
    assert.ok(!(thrown instanceof ArtifactError));
    assert.deepEqual({ ...failureOf(thrown), error: undefined }, { error: undefined, noRetry: true });
    assert.equal(await run("store", { refusal: new ArtifactError("too large") }), true);
    assert.equal(await run("store", { refusal: new Error("too large") }), false);
  } finally {
    dir.remove();
  }
});

test("only a NonRetryableError skips retries, and a subclass still checks as itself", () => {
  class InputMissing extends NonRetryableError {}
  assert.equal(failureOf(new InputMissing("x")).noRetry, true);
  assert.equal(failureOf(new Error("x")).noRetry, undefined);
  assert.equal(failureOf("a string").noRetry, undefined);
  assert.ok(!(new NonRetryableError("x") instanceof InputMissing));
  assert.ok(!(new Error("x") instanceof NonRetryableError));
});
