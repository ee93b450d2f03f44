// The `--json` shapes of the read commands, pinned: each command runs on a real standalone and the shape of what it
// prints (keys and value types, not ids, times or counts; see helpers/shape.ts) must equal its snapshot in
// test/fixtures/cli-json/. A changed shape fails here on purpose: scripts read these. When the change is meant,
// regenerate the snapshots and commit them with it:
//   MAPFLOW_UPDATE_SNAPSHOTS=1 node --import tsx --test test/cli-json.e2e.test.ts
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cli, FIXTURES, startCli, stopProcess, tempDir } from "./helpers/index.ts";
import { shape, type Shape } from "./helpers/shape.ts";

const SNAPSHOTS = join(FIXTURES, "cli-json");
const UPDATE = process.env.MAPFLOW_UPDATE_SNAPSHOTS === "1";
const dir = tempDir();
let standalone: Awaited<ReturnType<typeof startCli>>;

before(async () => {
  standalone = await startCli(["standalone", "--dags", join(FIXTURES, "reads"), "--data", dir.path, "--no-ui"], /mapflow standalone: NATS at/);
});

after(async () => {
  if (standalone) await stopProcess(standalone, "SIGINT");
  dir.remove();
});

/** The command's JSON: one document, or (`lines`) one a line, as an array. */
async function printed(args: string[], options: { lines?: boolean; exit?: number } = {}): Promise<unknown> {
  const { code, stdout, stderr } = await cli([...args, "--json", "--data", dir.path]);
  assert.equal(code, options.exit ?? 0, `mapflow ${args.join(" ")}: ${stderr}`);
  return options.lines ? stdout.trim().split("\n").map((l) => JSON.parse(l) as unknown) : JSON.parse(stdout);
}

function matchesSnapshot(name: string, actual: Shape): void {
  const file = join(SNAPSHOTS, `${name}.json`);
  if (UPDATE) writeFileSync(file, `${JSON.stringify(actual, null, 2)}\n`);
  assert.ok(existsSync(file), `no snapshot ${file}; make it with MAPFLOW_UPDATE_SNAPSHOTS=1 (see the top of this file)`);
  const expected = JSON.parse(readFileSync(file, "utf8")) as Shape;
  assert.deepEqual(actual, expected, `the shape of 'mapflow ${name.replace("-", " ")} --json' changed; if that is meant, regenerate the snapshots (see the top of this file)`);
}

test("the read commands' --json output keeps its shape", async () => {
  // A failed run (exit 1) with a mapped task, a retried instance, a skipped reduce, log lines and an artifact.
  const report = (await printed(["trigger", "reads", "--wait"], { exit: 1 })) as { runId: string };
  const runId = report.runId;
  await printed(["trigger", "ticker", "--wait"]);
  // The projection folds the runs a moment after they end.
  for (const deadline = Date.now() + 15_000; ; await new Promise((r) => setTimeout(r, 200))) {
    const runs = (await printed(["runs", "list"])) as { endedAt: number | null }[];
    if (runs.length === 2 && runs.every((r) => r.endedAt !== null)) break;
    if (Date.now() > deadline) assert.fail(`the projection did not show both runs ended: ${JSON.stringify(runs)}`);
  }

  const shapes: [string, Shape][] = [
    ["trigger-wait", shape(report)],
    ["runs-list", shape(await printed(["runs", "list"]))],
    ["tasks", shape(await printed(["tasks", runId]))],
    ["logs", shape(await printed(["logs", runId, "add", "--map-index", "5"], { lines: true }))],
    ["dags-list", shape(await printed(["dags", "list"]))],
    ["dags-show", shape(await printed(["dags", "show", "reads"]))],
    ["workers", shape(await printed(["workers"]))],
    // An event's payload is its own fields, which differ by event type (and are versioned by the codec): typed as an object here.
    ["events", shape(await printed(["events", runId], { lines: true }), new Set(["payload"]))],
    ["artifacts", shape(await printed(["artifacts", runId]))],
  ];
  for (const [name, actual] of shapes) matchesSnapshot(name, actual);
});
