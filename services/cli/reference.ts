/**
 * docs/cli.md, made from the command line itself: every command's help as
 * `--help` prints it, and the settings table. `make docs` writes it, and a
 * test fails when the file and the commands disagree, so the reference
 * cannot fall behind a new flag.
 */
import type { Command } from "commander";
import { CONFIG_FILE, SETTINGS } from "./settings.ts";

const HELP_WIDTH = 100;

/** A command's help text, as `--help` prints it on a 100-column terminal without colours. */
function helpOf(command: Command): string {
  let text = "";
  command.configureOutput({ writeOut: (s) => (text += s), getOutHelpWidth: () => HELP_WIDTH, getOutHasColors: () => false });
  command.outputHelp();
  return text.trimEnd();
}

function path(command: Command): string {
  const names: string[] = [];
  for (let c: Command | null = command; c; c = c.parent) names.unshift(c.name());
  return names.join(" ");
}

function sections(command: Command): string[] {
  const own = command.parent ? [`## \`${path(command)}\`\n\n\`\`\`text\n${helpOf(command)}\n\`\`\`\n`] : [];
  return [...own, ...command.commands.filter((c) => c.name() !== "help").flatMap((c) => sections(c as Command))];
}

export function cliReference(program: Command): string {
  const settings = SETTINGS.map((s) => `| \`${s.key}\` | \`${s.env}\` | ${s.flags.map((f) => (f.includes(":") ? `\`${f.split(":")[1]}\` on \`${f.split(":")[0]}\`` : `\`${f}\``)).join(", ")} |`);
  return [
    "# mapflow command line reference",
    "",
    "<!-- Made by `make docs` from the commands' own help (services/cli/reference.ts); a test checks it is current. Edit the commands, not this file. -->",
    "",
    "Exit codes: 0 success, 1 the run failed, 2 bad input, 3 NATS cannot be reached.",
    "",
    "## Settings",
    "",
    `A setting comes from its flag, else its environment variable, else \`${CONFIG_FILE}\` (in the working dir, or named by \`--config\` or \`MAPFLOW_CONFIG\`), else the flag's default. In the file, a setting sits at the top level (for every command that takes it) or in a section named for one command, which wins for that command (\`runs\` serves \`runs list\` too):`,
    "",
    "```json",
    JSON.stringify({ nats: "nats://10.0.0.5:4222,nats://10.0.0.6:4222", credentials: "/etc/mapflow/credentials.json", logLevel: "info", worker: { dags: "/srv/dags", queue: "train", concurrency: 4, ackWaitMs: 60000 } }, null, 2),
    "```",
    "",
    "Each value is checked by its flag's own parser when the command starts; a bad one stops it with exit 2, naming the file and key or the variable.",
    "",
    "| key | variable | flags |",
    "| --- | --- | --- |",
    ...settings,
    "",
    "## `mapflow`",
    "",
    "```text",
    helpOf(program),
    "```",
    "",
    ...sections(program),
  ].join("\n");
}
