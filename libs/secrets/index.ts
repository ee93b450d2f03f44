/**
 * What counts as a secret, and how one is kept out of what mapflow writes
 * down (logs, results, errors). Names are judged by their words, so
 * `DB_PASSWORD`, `apiKey` and `AWS_SECRET_ACCESS_KEY` are secrets while
 * `max_tokens`, `SORT_KEY` and `password_hash` are not: Airflow's masker
 * matches substrings and hides an LLM task's token counts too.
 */

export const REDACTED = "[redacted]";

/** A name is a secret when its last word is or ends with one of these… */
const SECRET_WORDS: ReadonlySet<string> = new Set([
  "password", "passwords", "passwd", "passphrase", "secret", "secrets", "token",
  "credential", "credentials", "authorization", "apikey", "cookie",
]);
/** …or when it ends in `key` after one of these (`API_KEY`, `privateKey`), but not `SORT_KEY`. */
const KEY_KINDS: ReadonlySet<string> = new Set(["api", "private", "access", "secret", "encryption", "signing", "master", "ssh"]);

/** `AWS_SECRET_ACCESS_KEY`, `apiKey`, `x-api-key` → their lower-case words. */
function words(name: string): string[] {
  return name.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toLowerCase().split(/[^a-z0-9]+/).filter(Boolean);
}

/** Log lines repeat their field names: each is judged once (bounded, so odd names cannot grow it without end). */
const judged = new Map<string, boolean>();

/** Whether a field or environment variable of this name holds a secret. */
export function isSecretName(name: string): boolean {
  const known = judged.get(name);
  if (known !== undefined) return known;
  const w = words(name);
  const last = w[w.length - 1] ?? "";
  // Ends with, not is: `PGPASSWORD` is one word.
  const secret = [...SECRET_WORDS].some((word) => last.endsWith(word)) || (last === "key" && KEY_KINDS.has(w[w.length - 2] ?? ""));
  if (judged.size >= 1000) judged.clear();
  judged.set(name, secret);
  return secret;
}

/**
 * `text` with every occurrence of each secret value replaced by
 * `[redacted]`. Longer values first, so a secret that contains another is
 * hidden whole; empty values hide nothing.
 */
export function maskSecrets(text: string, secrets: readonly string[]): string {
  let masked = text;
  for (const secret of [...secrets].filter(Boolean).sort((a, b) => b.length - a.length)) masked = masked.replaceAll(secret, REDACTED);
  return masked;
}

function isPlain(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * `value` with the value of every field whose name is a secret replaced by
 * `[redacted]`, in plain objects and arrays down to `depth` levels. Copies
 * only what changes: `value` itself comes back when it holds no such field.
 */
export function redactSecretFields<T>(value: T, depth = 8): T {
  if (depth < 0) return value;
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    value.forEach((item, i) => {
      const redacted = redactSecretFields(item, depth - 1);
      if (redacted !== item) (copy ??= [...value])[i] = redacted;
    });
    return (copy ?? value) as T;
  }
  if (!isPlain(value)) return value;
  let copy: Record<string, unknown> | undefined;
  for (const key of Object.keys(value)) {
    const item = value[key];
    const redacted = isSecretName(key) && item !== undefined && item !== null ? REDACTED : redactSecretFields(item, depth - 1);
    if (redacted !== item) (copy ??= { ...value })[key] = redacted;
  }
  return (copy ?? value) as T;
}
