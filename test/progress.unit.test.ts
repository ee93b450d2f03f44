// What `trigger --wait` and `run` show while a run goes on: counts per mapped task from the folded
// state, plain lines for pipes, bars for terminals.
import { test } from "node:test";
import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { dag, task } from "../libs/sdk/index.ts";
import { fold } from "../libs/core/index.ts";
import { formatDuration, mappedProgress, pace, progressLine } from "../services/cli/progress.ts";
import { progressReporter } from "../services/cli/progressbar.ts";
import { simulate } from "./helpers/simulate.ts";

const squares = dag({ id: "progress" }, () => {
  const n = task("n", () => [1, 2, 3, 4])({});
  const each = task("each", ({ v }: { v: number }) => v * v, { retries: 0 }).expand({ v: n });
  task("sum", ({ xs }: { xs: number[] }) => xs.length)({ xs: each });
});

/** A finished simulated run whose instance 2 failed, and the state after `k` of its events. */
async function run() {
  const sim = await simulate(squares, { fail: (item) => item.taskId === "each" && item.mapIndex === 2 });
  return { sim, after: (k: number) => fold(sim.events.slice(0, k))! };
}

/** A stream that keeps what is written to it, as a terminal (isTTY) or a pipe. */
function captured(tty: boolean) {
  const stream = new PassThrough() as PassThrough & { isTTY?: boolean; columns?: number };
  stream.isTTY = tty;
  stream.columns = 120;
  let text = "";
  stream.on("data", (chunk: Buffer) => (text += chunk.toString()));
  return { stream: stream as unknown as NodeJS.WriteStream, text: () => text };
}

test("a mapped task counts its finished and failed instances; unmapped and unexpanded tasks are left out", async () => {
  const { sim, after } = await run();
  const expandedAt = sim.events.findIndex((e) => e.type === "TaskExpanded" && e.taskId === "each") + 1;
  assert.deepEqual(mappedProgress(after(expandedAt - 1)), [], "not expanded yet: nothing to show");
  const firstTwo = sim.events.findIndex((e, i) => i >= expandedAt && e.type === "InstanceSucceeded" && e.taskId === "each" && e.mapIndex === 1) + 1;
  const middle = mappedProgress(after(firstTwo));
  assert.deepEqual(middle.map(({ taskId, total, done, failed, finished }) => ({ taskId, total, done, failed, finished })), [{ taskId: "each", total: 4, done: 2, failed: 0, finished: false }]);
  const end = mappedProgress(sim.state);
  assert.deepEqual(end.map(({ total, done, failed, finished }) => ({ total, done, failed, finished })), [{ total: 4, done: 4, failed: 1, finished: true }]);
});

test("the pace is instances per second since the task began, and the time left at that pace", () => {
  const p = { taskId: "each", total: 100, done: 25, failed: 0, finished: false, startedAt: 0 };
  assert.deepEqual(pace(p, 5000), { rate: 5, etaMs: 15_000 });
  assert.deepEqual(pace({ ...p, done: 0 }, 5000), { rate: 0, etaMs: null }, "nothing done yet: no guess");
  assert.deepEqual(pace({ ...p, done: 100, finished: true }, 5000).etaMs, 0);
  assert.equal(progressLine(p, 5, 15_000), "each [100]: 25/100 done, 5.0/s, ETA 15s");
  assert.equal(progressLine({ ...p, done: 100, failed: 3, finished: true }, 5, 0), "each [100]: 100/100 done, 3 failed");
  assert.equal(progressLine(p, 0, null), "each [100]: 25/100 done, 0.0/s, ETA ?");
  assert.deepEqual([formatDuration(59_400), formatDuration(61_000), formatDuration(3_725_000)], ["59s", "1m01s", "1h02m"]);
});

test("on a pipe the reporter writes plain lines, and at the end one line per mapped task with its failures", async () => {
  const { sim, after } = await run();
  const out = captured(false);
  const reporter = progressReporter(out.stream, () => sim.state.startedAt + 2000);
  for (let k = 1; k < sim.events.length; k++) reporter.update(after(k));
  assert.equal(out.text(), "", "a burst of events draws later, not once per event");
  reporter.finish(sim.state);
  assert.equal(out.text(), "each [4]: 4/4 done, 1 failed\n");
});

test("on a terminal the reporter draws a bar per mapped task with its counts, rate and failures", async () => {
  const { sim } = await run();
  const out = captured(true);
  const reporter = progressReporter(out.stream, () => (sim.state.tasks.each!.startedAt ?? 0) + 2000);
  reporter.finish(sim.state);
  const text = out.text();
  assert.match(text, /each \[4\] \|█{30}\| 4\/4 \(1 failed\) \| 2\.0\/s \| ETA 0s/);
});

test("a wait that fails still gives a terminal its cursor back", async () => {
  const { sim, after } = await run();
  const out = captured(true);
  const reporter = progressReporter(out.stream, () => sim.state.startedAt + 1000);
  reporter.update(after(sim.events.length - 2));
  await new Promise((r) => setTimeout(r, 250)); // the bars are drawn, and hide the cursor
  assert.match(out.text(), /\x1B\[\?25l/);
  reporter.finish(); // no final state: the wait failed
  const text = out.text();
  assert.ok(text.lastIndexOf("\x1B[?25h") > text.lastIndexOf("\x1B[?25l"), "the cursor is shown again after it was hidden");
});
