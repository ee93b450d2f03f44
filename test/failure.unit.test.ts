// Which failures retry, and mapflow's error classes across the copies of the SDK a DAG file may load.
import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { loadDags } from "../libs/dags/index.ts";
import { failureOf } from "../libs/core/index.ts";
import { ArtifactError, DagDefinitionError, NonRetryableError, TaskKvError } from "../libs/sdk/index.ts";
import type { TaskContext } from "../libs/sdk/types.ts";
import { tempDir } from "./helpers/index.ts";

const CLASSES = { ArtifactError, DagDefinitionError, NonRetryableError, TaskKvError };

test("errors of a DAG file loaded as CommonJS (no package.json beside it) and of the worker check as the same classes", async () => {
  const dir = tempDir();
  try {
    // A .ts file with no "type": "module" above it loads as CommonJS, with its own copy of the SDK.
    const file = join(dir.path, "gone.ts");
    writeFileSync(file, [
      'import { dag, task, ArtifactError, DagDefinitionError, NonRetryableError, TaskKvError } from "mapflow";',
      "export const copies = { ArtifactError, DagDefinitionError, NonRetryableError, TaskKvError };",
      "class Gone extends NonRetryableError {}",
      'export default dag({ id: "gone" }, () => {',
      '  task("load", () => { throw new Gone("the input is gone"); })({});',
      // A refusal the worker's copy throws, as a task would check it.
      '  task("store", ({ refusal }: { refusal: unknown }) => refusal instanceof ArtifactError)({ refusal: null });',
      "});",
    ].join("\n"));
    const bag = await loadDags(dir.path);
    assert.deepEqual(bag.errors, []);
    const module = (await import(pathToFileURL(file).href)) as { copies?: typeof CLASSES; default?: { copies?: typeof CLASSES } };
    const copies = module.copies ?? module.default?.copies;
    assert.ok(copies, "the DAG file exports its copies of the classes");
    for (const [name, ours] of Object.entries(CLASSES)) {
      const theirs = copies[name as keyof typeof CLASSES];
      assert.notEqual(theirs, ours, `${name}: the DAG file has a copy of its own, which is what this test is about`);
      assert.ok(new theirs("m") instanceof ours && new ours("m") instanceof theirs, `${name} checks as itself across the copies`);
      assert.ok(!(new theirs("m") instanceof (name === "ArtifactError" ? TaskKvError : ArtifactError)), `${name} is not another class`);
    }

    const run = async (taskId: string, args: Record<string, unknown>) => {
      const operator = bag.dags.get("gone")!.dag.operators.get(taskId)!;
      if (operator.kind !== "function") throw new Error("a function task was expected");
      return operator.fn(args, {} as TaskContext);
    };
    // The DAG file's own subclass of its copy: the worker takes it for what it is.
    const thrown = await run("load", {}).then(() => null, (err: unknown) => err);
    assert.ok(thrown instanceof NonRetryableError);
    assert.deepEqual({ ...failureOf(thrown), error: undefined }, { error: undefined, noRetry: true });
    assert.equal(await run("store", { refusal: new ArtifactError("too large") }), true);
    assert.equal(await run("store", { refusal: new Error("too large") }), false);
  } finally {
    dir.remove();
  }
});

test("only a NonRetryableError skips retries; a class of the user's own checks by prototype, whatever its name", () => {
  class InputMissing extends NonRetryableError {}
  assert.equal(failureOf(new InputMissing("x")).noRetry, true);
  assert.equal(failureOf(new Error("x")).noRetry, undefined);
  assert.equal(failureOf("a string").noRetry, undefined);
  assert.ok(!(new NonRetryableError("x") instanceof InputMissing));
  assert.ok(!(new Error("x") instanceof NonRetryableError));
  // Named like a mapflow class, or nameless: still only itself.
  const Fake = class ArtifactError extends NonRetryableError {};
  assert.ok(!(new Fake("x") instanceof ArtifactError));
  const [A, B] = [0, 1].map(() => class extends NonRetryableError {});
  assert.ok(new A!("x") instanceof A! && !(new A!("x") instanceof B!));
  // Marks are not enumerable: a copy of an error's fields is not an error.
  assert.ok(!({ ...new NonRetryableError("x") } instanceof NonRetryableError));
});
