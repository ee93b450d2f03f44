// Which failures retry: a NonRetryableError is known by the worker however the DAG file that threw it was loaded.
import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadDags } from "../libs/dags/index.ts";
import { failureOf } from "../libs/core/index.ts";
import { NonRetryableError } from "../libs/sdk/index.ts";
import type { TaskContext } from "../libs/sdk/types.ts";
import { tempDir } from "./helpers/index.ts";

test("a NonRetryableError from a DAG file loaded as CommonJS (no package.json beside it) is still one", async () => {
  const dir = tempDir();
  try {
    // A .ts file with no "type": "module" above it loads as CommonJS, with its own copy of the SDK.
    writeFileSync(join(dir.path, "gone.ts"), [
      'import { dag, task, NonRetryableError } from "mapflow";',
      'export default dag({ id: "gone" }, () => {',
      '  task("load", () => { throw new NonRetryableError("the input is gone"); })({});',
      "});",
    ].join("\n"));
    const bag = await loadDags(dir.path);
    assert.deepEqual(bag.errors, []);
    const operator = bag.dags.get("gone")!.dag.operators.get("load")!;
    assert.equal(operator.kind, "function");
    const thrown = await Promise.resolve().then(() => operator.kind === "function" && operator.fn({}, {} as TaskContext)).then(() => null, (err: unknown) => err);
    assert.ok(thrown instanceof NonRetryableError);
    assert.deepEqual({ ...failureOf(thrown), error: undefined }, { error: undefined, noRetry: true });
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
