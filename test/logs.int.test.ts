// What tasks write through ctx.log is stored per try on a real nats-server and read back per instance.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadDags, pickDag, type DagBag } from "../libs/dags/index.ts";
import { runReport, type LogLine, type RunState } from "../libs/core/index.ts";
import { MAX_LOG_LINE_BYTES, readTryLogs } from "../libs/nats/index.ts";
import { encodeLogLine } from "../libs/codec/index.ts";
import { createLogger } from "../libs/log/index.ts";
import { startStack, type Stack } from "../services/stack/index.ts";
import { requestRun, waitForRun } from "../services/cli/runs.ts";
import { FIXTURES, tempDir } from "./helpers/index.ts";
import { ITEMS } from "./fixtures/logs/logging.ts";

const dir = tempDir();
let stack: Stack;
let bag: DagBag;
let state: RunState;

before(async () => {
  bag = await loadDags(join(FIXTURES, "logs"));
  // The worker logs at warn: its tasks' info lines are stored all the same.
  stack = await startStack({ dataDir: dir.path, bag, log: createLogger("test", "warn") });
  const { version, dag } = pickDag(bag, "logging");
  const runId = await requestRun(stack.nats, { dagId: "logging", version, spec: dag.spec, conf: {} });
  state = await waitForRun(stack.nats, runId);
});

after(async () => {
  await stack?.stop();
  dir.remove();
});

/** A try's lines without their times, which only need to be there. */
function untimed(lines: LogLine[]): Omit<LogLine, "at">[] {
  for (const line of lines) assert.equal(typeof line.at, "number");
  return lines.map(({ at: _, ...rest }) => rest);
}

const linesFor = (item: string) => [
  { level: "info", msg: "working on item", fields: { item } },
  { level: "warn", msg: `sent ${item}`, fields: { step: "send", auth: { token: "[redacted]" } } },
];

test("the run succeeds, index 1 on its second try", () => {
  const report = runReport(state);
  assert.equal(report.state, "success");
  assert.deepEqual(report.tasks.work!.instances.map((i) => i.tries), [1, 2, 1]);
});

test("each try's lines are read back in order, as logged, with secrets redacted", async () => {
  for (const [mapIndex, item] of ITEMS.entries()) {
    const tries = await readTryLogs(stack.nats, state.runId, "work", mapIndex);
    const expected = mapIndex === 1 ? [1, 2] : [1];
    assert.deepEqual(tries.map((t) => t.try), expected, `tries of index ${mapIndex}`);
    for (const t of tries) assert.deepEqual(untimed(t.lines), linesFor(item!), `index ${mapIndex}, try ${t.try}`);
  }
});

test("one try can be read alone", async () => {
  const second = await readTryLogs(stack.nats, state.runId, "work", 1, 2);
  assert.deepEqual(second.map((t) => [t.try, untimed(t.lines)]), [[2, linesFor("b")]]);
  assert.deepEqual(await readTryLogs(stack.nats, state.runId, "work", 1, 3), [], "a try that never ran");
});

test("an instance that never logged has no lines", async () => {
  assert.equal(runReport(state).tasks.count!.state, "success");
  assert.deepEqual(await readTryLogs(stack.nats, state.runId, "count", -1), []);
  assert.deepEqual(await readTryLogs(stack.nats, state.runId, "work", 7), [], "no such instance");
});

test("a task inside a group (a dotted task id) has its own lines", async () => {
  const tries = await readTryLogs(stack.nats, state.runId, "stage.note", -1);
  assert.deepEqual(tries.map((t) => [t.try, untimed(t.lines)]), [[1, [{ level: "info", msg: "inside a group" }]]]);
});

test("a line too long for the stream is stored cut and marked, not lost", async () => {
  const [only] = await readTryLogs(stack.nats, state.runId, "shout", -1);
  assert.equal(only?.lines.length, 1);
  const line = only!.lines[0]!;
  assert.equal(line.level, "info");
  assert.match(line.msg, /^x{1000,}…\[truncated\] \(\d+ bytes\)$/);
  assert.equal(line.fields, undefined, "the fields went into the cut text");
  assert.ok(encodeLogLine(line).byteLength <= MAX_LOG_LINE_BYTES);
});
