// A captured logger prints as its parent does and hands each line to its sink as pino wrote it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { pino } from "pino";
import { capturing } from "../libs/log/index.ts";
import type { LogLine } from "../libs/core/logline.ts";

function quietWorker() {
  const printed: Record<string, unknown>[] = [];
  const parent = pino({ name: "worker", level: "warn", base: { service: "worker" } }, { write: (s: string) => void printed.push(JSON.parse(s)) })
    .child({ worker: "w1" });
  return { parent, printed };
}

test("given a worker logging at warn, when a captured task logger writes, then every line from info up reaches the sink and only warn up is printed", () => {
  const { parent, printed } = quietWorker();
  const lines: LogLine[] = [];
  const log = capturing(parent)({ runId: "R", taskId: "t", mapIndex: 0, try: 1 }, (line) => lines.push(line));

  log.debug("too fine to keep");
  log.info({ item: "a" }, "working on %s", "a");
  log.child({ step: "send" }).warn({ auth: { token: "s3cret" } }, "sent");
  log.error(new Error("boom"));

  const [info, warn, error] = lines;
  assert.equal(lines.length, 3);
  assert.deepEqual({ ...info, at: 0 }, { at: 0, level: "info", msg: "working on a", fields: { item: "a" } });
  assert.deepEqual({ ...warn, at: 0 }, { at: 0, level: "warn", msg: "sent", fields: { step: "send", auth: { token: "[redacted]" } } });
  assert.equal(error!.msg, "boom");
  assert.deepEqual(Object.keys(error!.fields!), ["err"], "an error is serialised as pino prints it");
  assert.equal((error!.fields!["err"] as { message: string }).message, "boom");
  assert.ok(lines.every((l) => Math.abs(l.at - Date.now()) < 60_000), "each line keeps its time");

  assert.deepEqual(printed.map((p) => [p["msg"], p["service"], p["worker"], p["runId"], p["try"]]), [
    ["sent", "worker", "w1", "R", 1],
    ["boom", "worker", "w1", "R", 1],
  ]);
  assert.deepEqual(printed[0]!["auth"], { token: "[redacted]" }, "printed redacted as before");
});

test("given two captured loggers, each line reaches only its own sink, and the parent's own lines reach none", () => {
  const { parent } = quietWorker();
  const capture = capturing(parent);
  const a: LogLine[] = [];
  const b: LogLine[] = [];
  const logA = capture({ runId: "R", taskId: "t", mapIndex: 0, try: 1 }, (line) => a.push(line));
  const logB = capture({ runId: "R", taskId: "t", mapIndex: 1, try: 1 }, (line) => b.push(line));

  logA.info("from a");
  logB.child({ deep: true }).info("from b");
  parent.error("the worker's own");

  assert.deepEqual(a.map((l) => [l.msg, l.fields]), [["from a", undefined]]);
  assert.deepEqual(b.map((l) => [l.msg, l.fields]), [["from b", { deep: true }]]);
});

test("given fields named like secrets anywhere in a line, when a captured logger writes, then their values are redacted in the stored and the printed line", () => {
  const printed: Record<string, unknown>[] = [];
  const parent = pino({ level: "info" }, { write: (s: string) => void printed.push(JSON.parse(s)) });
  const lines: LogLine[] = [];
  const log = capturing(parent)({ runId: "R" }, (line) => lines.push(line));

  log.child({ GITHUB_TOKEN: "ghp_child" }).info({ password: "pw1", DB_PASSWORD: "pw2", request: { headers: { authorization: "Bearer b" } }, max_tokens: 512 }, "calling");
  log.info({ env: { HOME: "/home/a", ANYTHING: "x" } }, "environment");
  const err = Object.assign(new Error("request failed"), { config: { headers: { Authorization: "Bearer e" } } });
  log.error({ err }, "failed");

  const text = JSON.stringify([lines, printed]);
  for (const secret of ["ghp_child", "pw1", "pw2", "Bearer b", "/home/a", "Bearer e"]) assert.ok(!text.includes(secret), `${secret} is not written`);
  assert.deepEqual(lines[0]!.fields, { GITHUB_TOKEN: "[redacted]", password: "[redacted]", DB_PASSWORD: "[redacted]", request: { headers: { authorization: "[redacted]" } }, max_tokens: 512 });
  assert.deepEqual(lines[1]!.fields, { env: { HOME: "[redacted]", ANYTHING: "[redacted]" } });
  assert.equal((lines[2]!.fields!["err"] as { message: string }).message, "request failed", "the error is still serialised as pino does");
});
