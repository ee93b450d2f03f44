/**
 * Who may use the UI's API: whoever holds its one token, sent as
 * `Authorization: Bearer <token>`. The token comes from MAPFLOW_API_TOKEN,
 * or is made on the first start and kept (mode 0600) in the data dir, where
 * later starts find it. A header, not a cookie, carries it: a page on
 * another site can make the browser send cookies, never this header, so the
 * API needs no other CSRF defence.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { join } from "node:path";
import { BadInputError } from "../../libs/errors.ts";
import { secretFile } from "../../libs/files/secret.ts";
import type { Logger } from "../../libs/log/index.ts";

export const TOKEN_ENV = "MAPFLOW_API_TOKEN";
export const TOKEN_FILE = "api-token";

/** The API token and where it came from: the environment, the data dir's file, or made just now (so printed once). */
export type ApiToken = { readonly value: string; readonly source: "env" | "file" | "new"; readonly file?: string };

/** Printable ASCII without spaces fits a header unchanged; 16 characters at least, so no one sets "secret". */
const TOKEN_SHAPE = /^[\x21-\x7e]{16,512}$/;
/** How long a signed download link works: long enough for a page left open, short enough that a copied link dies. */
export const SIGNED_LINK_MS = 60 * 60 * 1000;

/** MAPFLOW_API_TOKEN when set (empty counts as unset), else `<dataDir>/api-token`, made on the first start. */
export function apiToken(dataDir: string, log: Logger, env: NodeJS.ProcessEnv = process.env): ApiToken {
  const given = env[TOKEN_ENV];
  if (given) {
    if (!TOKEN_SHAPE.test(given)) throw new BadInputError(`${TOKEN_ENV} must be 16 to 512 printable characters without spaces; leave it unset to use a generated token`);
    return { value: given, source: "env" };
  }
  const file = join(dataDir, TOKEN_FILE);
  const token = secretFile(file, () => `${randomBytes(32).toString("base64url")}\n`);
  const kept = token.text.trim();
  if (token.made) return { value: kept, source: "new", file };
  if (!TOKEN_SHAPE.test(kept)) throw new BadInputError(`${file} does not hold an API token; delete it and the next start makes a new one`);
  if (token.openToOthers) log.warn({ file }, `other users of this machine can read the API token; run: chmod 600 ${file}`);
  return { value: kept, source: "file", file };
}

/** What to tell whoever started the UI: the link that signs in, once, when the token was just made; else where the token is. */
export function tokenNotice(url: string, token: ApiToken): string {
  switch (token.source) {
    case "new":
      return `open ${url}/#token=${token.value} to sign in (the API token, printed only this once; kept in ${token.file})`;
    case "file":
      return `the API token is in ${token.file}: open ${url}/#token=<token>, or send 'Authorization: Bearer <token>'`;
    case "env":
      return `the API token is the one in ${TOKEN_ENV}: open ${url}/#token=<token>, or send 'Authorization: Bearer <token>'`;
  }
}

const WHERE = "It was printed as a link when the UI first started, and is kept in the file 'api-token' in the UI's data dir (or set by MAPFLOW_API_TOKEN).";

const digest = (text: string) => createHash("sha256").update(text).digest();

export class ApiGate {
  // Digests have one length, so timingSafeEqual compares them without telling a caller how long the token is.
  private readonly expected: Buffer;

  constructor(private readonly token: ApiToken, private readonly publicRead: boolean) {
    this.expected = digest(token.value);
  }

  /** Undefined when the request may go on; else what to tell the caller (a 401). */
  refusal(req: IncomingMessage, url: URL, now = Date.now()): string | undefined {
    const read = req.method === "GET";
    if (read && this.publicRead) return undefined;
    const header = req.headers.authorization;
    if (header === undefined) {
      if (read && url.searchParams.has("sig")) return this.signedRefusal(url, now);
      return `this API needs its token: send the header 'Authorization: Bearer <token>'. ${WHERE}`;
    }
    const sent = /^Bearer +(\S+) *$/i.exec(header)?.[1];
    if (sent === undefined) return `send the token as 'Authorization: Bearer <token>'. ${WHERE}`;
    if (!timingSafeEqual(digest(sent), this.expected)) return `that is not this UI's API token. ${WHERE}`;
    return undefined;
  }

  /**
   * `path` with a signature that lets a GET through without the header
   * until it expires. A browser starts a download as a plain navigation,
   * which cannot carry the header; the link names one path, so it opens
   * that file and nothing else.
   */
  sign(path: string, now = Date.now()): string {
    const exp = now + SIGNED_LINK_MS;
    return `${path}?exp=${exp}&sig=${this.signature(path, exp)}`;
  }

  private signature(path: string, exp: number): string {
    return createHmac("sha256", this.token.value).update(`${path}\n${exp}`).digest("base64url");
  }

  private signedRefusal(url: URL, now: number): string | undefined {
    const exp = Number(url.searchParams.get("exp"));
    const sent = Buffer.from(url.searchParams.get("sig") ?? "");
    const wanted = Buffer.from(this.signature(url.pathname, exp));
    if (sent.length !== wanted.length || !timingSafeEqual(sent, wanted)) return `this link's signature does not match; ${WHERE}`;
    if (!Number.isInteger(exp) || exp <= now) return "this download link has expired; reload the page for a fresh one";
    return undefined;
  }
}
