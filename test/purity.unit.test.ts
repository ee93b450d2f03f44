// The pure parts of libs/ do no I/O: checked by scanning their imports, not hoped for.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

const PURE = ["libs/core", "libs/events", "libs/names", "libs/sdk", "libs/secrets"];
const FORBIDDEN = /from\s+["'](node:[^"']+|fs|net|child_process|@nats-io\/[^"']+|better-sqlite3|ulid)["']/;
const IMPURE_CALLS = /\b(Date\.now|Math\.random|new Date\(|process\.)/;

test("the pure core imports no Node built-ins, NATS or SQLite, and reads no clock or randomness", () => {
  const offences: string[] = [];
  for (const dir of PURE) {
    for (const name of readdirSync(dir).filter((n) => n.endsWith(".ts"))) {
      const text = readFileSync(join(dir, name), "utf8");
      const code = text.replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, "");
      const imp = code.match(FORBIDDEN);
      if (imp) offences.push(`${dir}/${name}: imports ${imp[1]}`);
      const call = code.match(IMPURE_CALLS);
      if (call) offences.push(`${dir}/${name}: uses ${call[1]}`);
    }
  }
  assert.deepEqual(offences, []);
});
