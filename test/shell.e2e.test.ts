// Through the CLI: a shell task mapped over hostile values does nothing but echo each one back.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readdirSync, realpathSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cli, FIXTURES, tempDir } from "./helpers/index.ts";
import { HOSTILE } from "./fixtures/safety/shell_hostile.ts";

type Report = { state: string; tasks: Record<string, { instances: { mapIndex: number; state: string; result: unknown }[] }> };

test("given hostile values mapped into a shell command, when the DAG runs, then each comes back exactly as it went in and nothing else ran", async () => {
  // The commands run in the CLI's directory: a folder for '; rm -rf x' to remove, and nothing named pwned.
  const dir = tempDir();
  try {
    mkdirSync(join(dir.path, "x"));
    writeFileSync(join(dir.path, "x", "keep"), "kept");
    const { code, stdout, stderr } = await cli(["run", "shell_hostile", "--dags", join(FIXTURES, "safety"), "--json"], { cwd: dir.path });
    assert.equal(code, 0, stderr);
    const report = JSON.parse(stdout) as Report;

    const hex = report.tasks["echo_hex"]!.instances.map((i) => Buffer.from(String(i.result), "hex").toString("utf8"));
    assert.deepEqual(hex, HOSTILE, "every byte of every value came back, newlines included");
    const oneLine = HOSTILE.filter((v) => !v.includes("\n"));
    assert.deepEqual(report.tasks["echo_value"]!.instances.map((i) => i.result), oneLine, "echoed as written: the result is the value");

    assert.equal(report.tasks["where"]!.instances[0]!.result, realpathSync(dir.path), "the commands ran in the directory checked below");
    assert.deepEqual(readdirSync(dir.path).sort(), ["x"], "no file was made (no 'pwned')");
    assert.ok(existsSync(join(dir.path, "x", "keep")), "nothing was removed");
  } finally {
    dir.remove();
  }
});

test("ids given to commands are checked before anything connects: a wildcard or a dot is exit 2, never a subject", async () => {
  const dir = tempDir();
  try {
    const data = ["--data", dir.path];
    const cases: [string[], RegExp][] = [
      [["trigger", "a.>", ...data], /'a\.>' is not a valid DAG id/],
      [["cancel", "*", ...data], /'\*' is not a valid run id/],
      [["clear", "01RUN", "t *", ...data], /'t \*' is not a valid task id/],
      [["mark", "run.>", "t", "--map-index", "0", "--state", "success", ...data], /'run\.>' is not a valid run id/],
      [["events", ">", ...data], /'>' is not a valid run id/],
      [["artifacts", "list", "a b", ...data], /'a b' is not a valid run id/],
      [["artifacts", "get", "01RUN", "t.*", "f.txt", "--out", "-", ...data], /'t\.\*' is not a valid task id/],
      [["dags", "show", "x*", ...data], /'x\*' is not a valid DAG id/],
      [["standalone", "--dags", FIXTURES, "--run", "x.y", "--data", dir.path], /'x\.y' is not a valid DAG id/],
      [["trigger", "d".repeat(251), ...data], /is not a valid DAG id/],
    ];
    for (const [args, message] of cases) {
      const { code, stderr } = await cli(args);
      assert.equal(code, 2, `${args.join(" ")}: ${stderr}`);
      assert.match(stderr, message, args.join(" "));
    }
  } finally {
    dir.remove();
  }
});
