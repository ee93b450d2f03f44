/** Writes docs/cli.md from the command line's own help (`make docs`). */
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { program } from "../services/cli/main.ts";
import { cliReference } from "../services/cli/reference.ts";

const target = fileURLToPath(new URL("../docs/cli.md", import.meta.url));
writeFileSync(target, `${cliReference(program)}\n`);
process.stdout.write(`wrote ${target}\n`);
