/**
 * A file that holds a secret made on first use (NATS credentials, the UI's
 * API token): written once with mode 0600, read by every later start.
 */
import { mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

/** What the file holds, whether this call made it, and whether other users of the machine can read it. */
export type SecretFile = { readonly text: string; readonly made: boolean; readonly openToOthers: boolean };

/**
 * The file's text, or `make()`'s written to it when there is no file yet.
 * Written with `wx`: of two processes starting at once, one makes the file
 * and the other reads what it wrote.
 */
export function secretFile(file: string, make: () => string): SecretFile {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const made = make();
  try {
    writeFileSync(file, made, { mode: 0o600, flag: "wx" });
    return { text: made, made: true, openToOthers: false };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
  }
  return { text: readFileSync(file, "utf8"), made: false, openToOthers: (statSync(file).mode & 0o077) !== 0 };
}
