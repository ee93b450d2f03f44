// Every acceptance DAG through the real CLI (`npx mapflow run … --json`), compared with expected.json.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { spawn } from "node:child_process";
import { ACCEPTANCE, ROOT } from "./helpers/index.ts";

type Expected = Record<string, { state: string; tasks: Record<string, { state: string; mapped: boolean; results: unknown[] }> }>;
const expected = JSON.parse(readFileSync(join(ACCEPTANCE, "expected.json"), "utf8")) as Expected;

function npx(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn("npx", ["--no-install", "mapflow", ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c));
    child.stderr.on("data", (c: Buffer) => (stderr += c));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

for (const [dagId, want] of Object.entries(expected)) {
  test(`acceptance: ${dagId}`, async () => {
    const { code, stdout, stderr } = await npx(["run", dagId, "--dags", ACCEPTANCE, "--json"]);
    assert.equal(code, want.state === "success" ? 0 : 1, stderr);
    const run = JSON.parse(stdout) as {
      runId: string; dagId: string; state: string; startedAt: number; endedAt: number;
      tasks: Record<string, { state: string; mapped: boolean; instances: { mapIndex: number; state: string; tries: number; result: unknown; startedAt: number | null; endedAt: number | null }[] }>;
    };
    assert.equal(run.dagId, dagId);
    assert.match(run.runId, /^[0-9A-HJKMNP-TV-Z]{26}$/, "run ids are ULIDs");
    assert.equal(run.state, want.state);
    assert.ok(run.endedAt >= run.startedAt);
    assert.deepEqual(Object.keys(run.tasks).sort(), Object.keys(want.tasks).sort());
    for (const [taskId, t] of Object.entries(want.tasks)) {
      const got = run.tasks[taskId]!;
      assert.equal(got.state, t.state, `${taskId} state`);
      assert.equal(got.mapped, t.mapped, `${taskId} mapped`);
      const ok = got.instances.filter((i) => i.state === "success");
      assert.deepEqual(ok.map((i) => i.result), t.results, `${taskId} results`);
      assert.deepEqual(got.instances.map((i) => i.mapIndex), t.mapped ? got.instances.map((_, n) => n) : got.instances.map(() => -1));
      for (const i of ok) assert.ok(i.tries === 1 && typeof i.startedAt === "number" && i.endedAt! >= i.startedAt!);
    }
  });
}
