/**
 * The few HTTP pieces the UI server needs over node:http: routes matched by
 * method and path pattern, JSON in and out with a size limit, and errors
 * turned into JSON answers with the status their kind deserves.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { BadInputError } from "../../libs/errors.ts";

export type Params = Record<string, string>;
export type Request = { readonly req: IncomingMessage; readonly url: URL; readonly params: Params };
export type Handler = (request: Request, res: ServerResponse) => Promise<unknown> | unknown;

/** A request for something that is not there (a run, a task): 404 with what was asked for. */
export class NotFoundError extends Error {
  override name = "NotFoundError";
}

type Route = { method: string; pattern: RegExp; names: string[]; handler: Handler };

export class Router {
  private readonly routes: Route[] = [];

  /** `path` segments written `:name` match one URL segment each. */
  on(method: "GET" | "POST", path: string, handler: Handler): this {
    const names: string[] = [];
    const pattern = new RegExp(`^${path.replace(/:(\w+)/g, (_, name: string) => (names.push(name), "([^/]+)"))}$`);
    this.routes.push({ method, pattern, names, handler });
    return this;
  }

  /** The handler for a request, or undefined; a path known under another method answers 405. */
  match(method: string, pathname: string): { handler: Handler; params: Params } | "wrong-method" | undefined {
    let known = false;
    for (const route of this.routes) {
      const m = route.pattern.exec(pathname);
      if (!m) continue;
      known = true;
      if (route.method !== method) continue;
      const params: Params = {};
      route.names.forEach((name, i) => (params[name] = decodeSegment(m[i + 1]!)));
      return { handler: route.handler, params };
    }
    return known ? "wrong-method" : undefined;
  }
}

/** A path segment, percent-decoded; a malformed escape (`%E0`) is the client's error, not the server's. */
function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new BadInputError(`'${segment}' in the path is not valid percent-encoding`);
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", "cache-control": "no-store", ...headers });
  res.end(text);
}

/** API bodies are small JSON objects (a conf, a list of map indexes); anything larger is refused. */
export const MAX_BODY_BYTES = 1024 * 1024;

/**
 * Every action takes a JSON body, even one that reads nothing from it: a
 * plain HTML form on another site cannot send that content type.
 */
export function checkJsonBody(req: IncomingMessage): void {
  const type = req.headers["content-type"] ?? "";
  if (!type.startsWith("application/json")) throw new BadInputError(`send the body as JSON with content-type application/json (got '${type || "none"}')`);
  // A body announced as too large is refused before a byte of it is read.
  if (Number(req.headers["content-length"] ?? 0) > MAX_BODY_BYTES) throw new BadInputError(`the request body is over ${MAX_BODY_BYTES} bytes; send less`);
}

export async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  checkJsonBody(req);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new BadInputError(`the request body is over ${MAX_BODY_BYTES} bytes; send less`);
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString("utf8") || "{}";
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (err) {
    throw new BadInputError(`the request body is not JSON: ${(err as Error).message}`);
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw new BadInputError("the request body must be a JSON object");
  return body as Record<string, unknown>;
}

/** The status an error deserves: the caller's mistake (400/404) or ours (500). */
export function statusOf(err: unknown): number {
  if (err instanceof NotFoundError) return 404;
  if (err instanceof BadInputError) return 400;
  return 500;
}

/** A whole number from the query string (at least `min`), or the default; a clear 400 when it is not one. */
export function intParam(url: URL, name: string, fallback: number, min = 0): number {
  const text = url.searchParams.get(name);
  if (text === null || text === "") return fallback;
  const value = Number(text);
  // SQLite reads a negative LIMIT as none at all: the caps on a page must hold.
  if (!Number.isInteger(value) || value < min) throw new BadInputError(`query parameter '${name}' must be a whole number ≥ ${min}, got '${text}'`);
  return value;
}
