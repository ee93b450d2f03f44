// One set of settings from flags, MAPFLOW_* variables and mapflow.config.json, in that order, each
// checked by its flag's own parser with an error that says where the bad value came from.
import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Command, Option } from "commander";
import { BadInputError } from "../libs/errors.ts";
import { applySettings, configPath, readConfig, nameVariablesInHelp, SETTINGS } from "../services/cli/settings.ts";
import { wholeNumber } from "../services/cli/common.ts";
import { program } from "../services/cli/main.ts";
import { tempDir } from "./helpers/index.ts";

/** A small command line shaped like mapflow's: a worker, and a `runs list` under a group. */
function cliLike() {
  const root = new Command("mapflow").exitOverride().addOption(new Option("--log-level <level>").choices(["info", "debug"]));
  const seen: Record<string, unknown> = {};
  root.command("worker")
    .option("--data <dir>", "", ".mapflow")
    .option("--concurrency <n>", "", wholeNumber("--concurrency", 1), 32)
    .option("--json")
    .action((opts) => void Object.assign(seen, { worker: opts }));
  root.command("runs").command("list").option("--data <dir>", "", ".mapflow").action((opts) => void Object.assign(seen, { list: opts }));
  nameVariablesInHelp(root);
  return { root, seen };
}

function configFile(content: unknown): { file: string; remove(): void } {
  const dir = tempDir("mapflow-config-");
  const file = join(dir.path, "mapflow.config.json");
  writeFileSync(file, typeof content === "string" ? content : JSON.stringify(content));
  return { file, remove: dir.remove };
}

async function parsed(args: string[], config: unknown, env: NodeJS.ProcessEnv = {}) {
  const { root, seen } = cliLike();
  const c = config === undefined ? undefined : configFile(config);
  try {
    applySettings(root, c ? readConfig(c.file, ["worker", "runs"]) : undefined, env);
    await root.parseAsync(args, { from: "user" });
    return seen as { worker?: { data: string; concurrency: number }; list?: { data: string } };
  } finally {
    c?.remove();
  }
}

test("a flag beats MAPFLOW_*, which beats the config file's command section, which beats its top level, which beats the default", async () => {
  const config = { data: "/top", worker: { data: "/section", concurrency: 4 } };
  assert.deepEqual((await parsed(["worker"], undefined)).worker, { data: ".mapflow", concurrency: 32 });
  assert.deepEqual((await parsed(["worker"], { data: "/top" })).worker, { data: "/top", concurrency: 32 });
  assert.deepEqual((await parsed(["worker"], config)).worker, { data: "/section", concurrency: 4 });
  assert.deepEqual((await parsed(["worker"], config, { MAPFLOW_DATA: "/env", MAPFLOW_CONCURRENCY: "8" })).worker, { data: "/env", concurrency: 8 });
  assert.deepEqual((await parsed(["worker", "--data", "/flag", "--concurrency", "2"], config, { MAPFLOW_DATA: "/env", MAPFLOW_CONCURRENCY: "8" })).worker, { data: "/flag", concurrency: 2 });
  // A group's section serves its subcommands: `runs list` reads "runs".
  assert.deepEqual((await parsed(["runs", "list"], { data: "/top", runs: { data: "/runs" } })).list, { data: "/runs" });
});

test("a bad value is an error naming where it came from, checked by the flag's own parser and choices", async () => {
  await assert.rejects(parsed(["worker"], { worker: { concurrency: 0 } }), (err: Error) =>
    err instanceof BadInputError && /mapflow\.config\.json: "worker\.concurrency": --concurrency takes a whole number ≥ 1, got '0'/.test(err.message));
  await assert.rejects(parsed(["worker"], undefined, { MAPFLOW_CONCURRENCY: "many" }), /MAPFLOW_CONCURRENCY: --concurrency takes a whole number ≥ 1, got 'many'/);
  await assert.rejects(parsed(["worker"], { logLevel: "loud" }), /"logLevel" must be one of info, debug, got 'loud'/);
  await assert.rejects(parsed(["worker"], { concurency: 4 }), /"concurency" is not a setting; the settings are nats, credentials, data/);
  await assert.rejects(parsed(["worker"], { worker: { concurrency: "4" } }), /"worker\.concurrency" must be a number, got "4"/);
  await assert.rejects(parsed(["worker"], { worker: 4 }), /"worker" must be an object of settings for 'mapflow worker'/);
  await assert.rejects(parsed(["worker"], "{ nope"), /is not valid JSON/);
  await assert.rejects(parsed(["worker"], [1]), /must hold a JSON object of settings/);
});

test("the config file is --config, else MAPFLOW_CONFIG, else mapflow.config.json in the working dir if there is one", () => {
  const dir = tempDir("mapflow-config-");
  try {
    assert.equal(configPath(["worker", "--config", "a.json"], {}, dir.path), join(dir.path, "a.json"));
    assert.equal(configPath(["--config=b.json", "worker"], { MAPFLOW_CONFIG: "c.json" }, dir.path), join(dir.path, "b.json"));
    assert.equal(configPath(["worker"], { MAPFLOW_CONFIG: "/etc/mapflow.json" }, dir.path), "/etc/mapflow.json");
    assert.equal(configPath(["worker"], {}, dir.path), undefined, "no file, no config");
    writeFileSync(join(dir.path, "mapflow.config.json"), "{}");
    assert.equal(configPath(["worker"], {}, dir.path), join(dir.path, "mapflow.config.json"));
    assert.throws(() => readConfig(join(dir.path, "missing.json"), []), /cannot read the config file .*missing\.json/);
  } finally {
    dir.remove();
  }
});

test("every setting stands for a flag of some mapflow command, and every flag of one name means one setting", () => {
  const flags = new Map<string, string[]>();
  const visit = (command: Command) => {
    for (const option of command.options) if (option.long) flags.set(option.long, [...(flags.get(option.long) ?? []), command.name()]);
    command.commands.forEach((c) => visit(c as Command));
  };
  visit(program);
  for (const s of SETTINGS) {
    for (const f of s.flags) {
      const [command, flag] = f.includes(":") ? f.split(":") as [string, string] : [undefined, f];
      assert.ok(flags.get(flag)?.some((c) => command === undefined || c === command), `setting ${s.key}: no command has ${f}`);
    }
    assert.match(s.env, /^MAPFLOW_[A-Z_]+$/);
  }
  assert.equal(new Set(SETTINGS.map((s) => s.env)).size, SETTINGS.length, "one variable per setting");
});
