/**
 * mapflow's settings, in one list: each is a flag of the commands that take
 * it, an environment variable, and a key of an optional `mapflow.config.json`,
 * in that order of precedence (then the flag's default). A value from the
 * environment or the file goes through the flag's own parser, so it is
 * checked as strictly as the flag and a bad one is an error (exit 2) that
 * says where it came from.
 */
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import type { Command, Option } from "commander";
import { BadInputError } from "../../libs/errors.ts";

type Kind = "string" | "number" | "list";

export type Setting = {
  /** Its key in mapflow.config.json. */
  readonly key: string;
  readonly env: string;
  /** The flags it sets: `--flag` on every command that has it, `command:--flag` on that command only. */
  readonly flags: readonly string[];
  readonly kind: Kind;
};

const setting = (key: string, env: string, kind: Kind, ...flags: string[]): Setting => ({ key, env, kind, flags });

export const SETTINGS: readonly Setting[] = [
  setting("nats", "MAPFLOW_NATS", "string", "--nats"),
  setting("credentials", "MAPFLOW_NATS_CREDENTIALS", "string", "--credentials"),
  setting("data", "MAPFLOW_DATA", "string", "--data"),
  setting("dags", "MAPFLOW_DAGS", "string", "--dags"),
  setting("queue", "MAPFLOW_QUEUE", "string", "--queue"),
  setting("queues", "MAPFLOW_QUEUES", "list", "--queues"),
  setting("concurrency", "MAPFLOW_CONCURRENCY", "number", "--concurrency"),
  setting("ackWaitMs", "MAPFLOW_ACK_WAIT_MS", "number", "--ack-wait-ms"),
  setting("heartbeatMs", "MAPFLOW_HEARTBEAT_MS", "number", "--heartbeat-ms"),
  setting("maxDeliver", "MAPFLOW_MAX_DELIVER", "number", "--max-deliver"),
  setting("maxAckPending", "MAPFLOW_MAX_ACK_PENDING", "number", "--max-ack-pending"),
  setting("graceMs", "MAPFLOW_GRACE_MS", "number", "--grace-ms"),
  setting("leaseMs", "MAPFLOW_LEASE_MS", "number", "--lease-ms"),
  setting("maxMapLength", "MAPFLOW_MAX_MAP_LENGTH", "number", "--max-map-length"),
  setting("durability", "MAPFLOW_DURABILITY", "string", "--durability"),
  setting("logRetentionDays", "MAPFLOW_LOG_RETENTION_DAYS", "number", "--log-retention-days"),
  setting("natsPort", "MAPFLOW_NATS_PORT", "number", "standalone:--port"),
  setting("uiHost", "MAPFLOW_UI_HOST", "string", "--ui-host", "ui:--host"),
  setting("uiPort", "MAPFLOW_UI_PORT", "number", "--ui-port", "ui:--port"),
  setting("metricsHost", "MAPFLOW_METRICS_HOST", "string", "--metrics-host"),
  setting("metricsPort", "MAPFLOW_METRICS_PORT", "number", "--metrics-port"),
  setting("logLevel", "MAPFLOW_LOG_LEVEL", "string", "--log-level"),
];

export const CONFIG_FILE = "mapflow.config.json";

/** The setting a command's option stands for, if any. */
function settingOf(command: Command, option: Option): Setting | undefined {
  const flag = option.long;
  if (!flag) return undefined;
  return SETTINGS.find((s) => s.flags.some((f) => f === flag || f === `${command.name()}:${flag}`));
}

/** Every command under `root`, itself included. */
function commands(root: Command): Command[] {
  return [root, ...root.commands.flatMap((c) => commands(c as Command))];
}

/** The name of the top-level command `command` belongs to (`runs` for `runs list`): its config section. */
function sectionName(command: Command): string {
  let c = command;
  while (c.parent?.parent) c = c.parent;
  return c.name();
}

/** Names each option's environment variable in its help. (Commander reads only those given before the option is added: `applySettings` reads them.) */
export function nameVariablesInHelp(root: Command): void {
  for (const command of commands(root)) {
    for (const option of command.options) {
      const s = settingOf(command, option);
      if (s && !option.envVar) option.env(s.env);
    }
  }
}

export type Config = { file: string; values: Record<string, unknown>; sections: Record<string, Record<string, unknown>> };

/**
 * The config file to read: `--config <file>` in argv, else MAPFLOW_CONFIG,
 * else mapflow.config.json in the working dir if there is one.
 */
export function configPath(argv: readonly string[], env = process.env, cwd = process.cwd()): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--config" && argv[i + 1] !== undefined) return resolve(cwd, argv[i + 1]!);
    if (argv[i]!.startsWith("--config=")) return resolve(cwd, argv[i]!.slice("--config=".length));
  }
  if (env.MAPFLOW_CONFIG) return resolve(cwd, env.MAPFLOW_CONFIG);
  const local = resolve(cwd, CONFIG_FILE);
  return existsSync(local) ? local : undefined;
}

/** Reads and checks a config file: settings at the top, or in a section named for a command (its subcommands too). */
export function readConfig(file: string, commandNames: readonly string[]): Config {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new BadInputError(`cannot read the config file ${file} (${(err as Error).message}); fix the path given by --config or MAPFLOW_CONFIG`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new BadInputError(`the config file ${file} is not valid JSON (${(err as Error).message})`);
  }
  if (!isObject(parsed)) throw new BadInputError(`the config file ${file} must hold a JSON object of settings, e.g. {"nats": "nats://127.0.0.1:4222", "worker": {"concurrency": 8}}`);
  const values: Record<string, unknown> = {};
  const sections: Record<string, Record<string, unknown>> = {};
  for (const [key, value] of Object.entries(parsed)) {
    if (key === "$schema") continue;
    if (commandNames.includes(key)) {
      if (!isObject(value)) throw new BadInputError(`${file}: "${key}" must be an object of settings for 'mapflow ${key}'`);
      for (const [inner, v] of Object.entries(value)) checkValue(file, `${key}.${inner}`, inner, v);
      sections[key] = value;
      continue;
    }
    checkValue(file, key, key, value);
    values[key] = value;
  }
  return { file, values, sections };
}

function checkValue(file: string, path: string, key: string, value: unknown): void {
  const s = SETTINGS.find((x) => x.key === key);
  if (!s) throw new BadInputError(`${file}: "${path}" is not a setting; the settings are ${SETTINGS.map((x) => x.key).join(", ")} (or a section named for a command)`);
  const ok = s.kind === "number" ? typeof value === "number" : s.kind === "list" ? typeof value === "string" || (Array.isArray(value) && value.every((v) => typeof v === "string")) : typeof value === "string";
  if (!ok) throw new BadInputError(`${file}: "${path}" must be ${s.kind === "number" ? "a number" : s.kind === "list" ? "a list of strings" : "a string"}, got ${JSON.stringify(value)}`);
}

/**
 * Sets each option that stands for a setting from the environment, else
 * from the config file (a command's own section over its top level),
 * before the command line is parsed: a flag given then still wins. Each
 * value goes through the flag's own parser and choices.
 */
export function applySettings(root: Command, config: Config | undefined, env: NodeJS.ProcessEnv = process.env): void {
  for (const command of commands(root)) {
    const section = config?.sections[sectionName(command)] ?? {};
    for (const option of command.options) {
      const s = settingOf(command, option);
      if (!s) continue;
      let value: unknown;
      let where: string;
      let source: "env" | "config";
      if (env[s.env] !== undefined && env[s.env] !== "") {
        value = env[s.env];
        where = s.env;
        source = "env";
      } else if (config && (s.key in section || s.key in config.values)) {
        const inSection = s.key in section;
        value = inSection ? section[s.key] : config.values[s.key];
        where = `${config.file}: "${inSection ? `${sectionName(command)}.` : ""}${s.key}"`;
        source = "config";
      } else continue;
      const text = Array.isArray(value) ? value.join(",") : String(value);
      if (option.argChoices && !option.argChoices.includes(text)) throw new BadInputError(`${where} must be one of ${option.argChoices.join(", ")}, got '${text}'`);
      let parsed: unknown = text;
      try {
        if (option.parseArg) parsed = option.parseArg(text, undefined);
      } catch (err) {
        throw new BadInputError(`${where}: ${(err as Error).message}`);
      }
      command.setOptionValueWithSource(option.attributeName(), parsed, source);
    }
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
