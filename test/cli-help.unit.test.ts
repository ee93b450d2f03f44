// Every command of the `mapflow` program (walked through commander's `commands`, so a new one is covered the day it
// is added) explains itself: a description, and an `Example:` in its --help; every read command takes --json.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { Command } from "commander";
import { program } from "../services/cli/main.ts";
import { shape } from "./helpers/shape.ts";
import { cli } from "./helpers/index.ts";

/** Every command under `root`, by its full name (`dags list`), parents before their subcommands. */
function commands(root: Command, path: string[] = []): [string, Command][] {
  return root.commands.flatMap((c) => {
    const name = [...path, c.name()];
    return [[name.join(" "), c] as [string, Command], ...commands(c, name)];
  });
}

/** What `mapflow <command> --help` prints, the text added after the options included. */
function helpOf(command: Command): string {
  let out = "";
  command.configureOutput({ writeOut: (s) => (out += s), writeErr: (s) => (out += s) });
  command.outputHelp();
  return out;
}

/**
 * The read commands: each looks at a stack and prints what it found, changing nothing, so scripts read
 * their output and each must print JSON with --json (the shapes are pinned in cli-json.e2e.test.ts).
 * Not here: commands that act (trigger, clear, cancel, mark, dags pause/unpause, db clean, replay, which
 * writes a file; they take --json for their report where they have one), services that keep running
 * (standalone, worker, coordinator, projector, ui, cluster), `artifacts get` (a download) and the groups
 * (db, audit, artifacts, dags, runs), which only hold subcommands.
 */
const READS = ["runs list", "tasks", "logs", "dags list", "dags show", "workers", "events", "artifacts list", "audit verify"];

const all = commands(program);

test("every command has a description and an Example: in its --help", () => {
  assert.ok(all.length >= 25, `walked ${all.length} commands: ${all.map(([n]) => n).join(", ")}`);
  const missing: string[] = [];
  for (const [name, command] of [["mapflow", program] as [string, Command], ...all]) {
    if (!command.description().trim()) missing.push(`${name}: no description`);
    if (!/^Example:\n {2}npx mapflow /m.test(helpOf(command))) missing.push(`${name}: no 'Example:' followed by an 'npx mapflow …' line in its --help`);
  }
  assert.deepEqual(missing, []);
});

test("every read command takes --json and says what it prints", () => {
  const byName = new Map(all);
  for (const name of READS) {
    const command = byName.get(name);
    assert.ok(command, `'${name}' is listed as a read command but the program has none by that name`);
    assert.ok(command.options.some((o) => o.long === "--json"), `'mapflow ${name}' has no --json`);
    assert.match(helpOf(command), /--json\s+\S/, `'mapflow ${name} --help' describes --json`);
  }
});

test("the real binary prints a command's help, with its example, and exits 0", async () => {
  const { code, stdout } = await cli(["logs", "--help"]);
  assert.equal(code, 0);
  assert.match(stdout, /^Usage: mapflow logs \[options\] <runId> <taskId>/);
  assert.match(stdout, /--map-index <n>[\s\S]*--try <n>[\s\S]*--follow[\s\S]*--json/);
  assert.match(stdout, /Example:\n {2}npx mapflow logs \S+ add --map-index 2 --follow/);
});

test("shape() keeps keys and types, drops values, and merges an array's elements into one shape", () => {
  assert.deepEqual(shape({ b: 1, a: "x", c: null, d: [true], e: [] }), { a: "string", b: "number", c: "null", d: ["boolean"], e: [] });
  assert.deepEqual(shape([{ id: 1, result: 2 }, { id: 2, result: null, error: "boom" }]), [{ "error?": "string", id: "number", result: "null|number" }]);
  assert.deepEqual(shape([{ last: null }, { last: { at: 1 } }]), [{ last: { oneOf: ["null", { at: "number" }] } }]);
  assert.deepEqual(shape([{ payload: { a: 1 } }, { payload: { b: [1] } }], new Set(["payload"])), [{ payload: "object" }]);
});
