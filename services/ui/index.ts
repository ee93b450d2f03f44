/**
 * The web UI service: a small node:http server with the JSON API, the live
 * stream, and the bundled browser code. It reads the SQLite projection a
 * projector writes (its own or one beside it) and talks to NATS for history,
 * logs and actions. It binds to 127.0.0.1 unless told otherwise, and its
 * API answers only requests that carry its token (auth.ts).
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Nats } from "../../libs/nats/index.ts";
import { ReadQueries } from "../../libs/store/queries.ts";
import type { Logger } from "../../libs/log/index.ts";
import { apiRoutes } from "./api.ts";
import { bundleClient, INDEX_HTML, type Bundle } from "./bundle.ts";
import { ApiGate, type ApiToken } from "./auth.ts";
import { checkJsonBody, Router, sendJson, statusOf } from "./http.ts";
import { LiveHub } from "./live.ts";
import { BadInputError } from "../../libs/errors.ts";
import { metricsResponse } from "../../libs/metrics/index.ts";

export const DEFAULT_UI_HOST = "127.0.0.1";
export const DEFAULT_UI_PORT = 8080;

export type UiOptions = {
  nats: Nats;
  /** The projection's SQLite file (it must exist: start the projector first). */
  dbPath: string;
  log: Logger;
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** What every API request must carry (`apiToken` finds or makes it). */
  token: ApiToken;
  /** Let GET requests (reads) through without the token; actions still need it. */
  publicRead?: boolean;
};

export type Ui = { readonly url: string; readonly token: ApiToken; stop(): Promise<void> };

/** The app's page holds no data, so it needs no token; it must not be framed, where another site could steer its clicks. */
const PAGE_HEADERS = { "x-frame-options": "DENY", "content-security-policy": "frame-ancestors 'none'", "referrer-policy": "no-referrer" };

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^(::ffff:)?127\.\d+\.\d+\.\d+$/.test(host);
}

export async function startUi(options: UiOptions): Promise<Ui> {
  const { log } = options;
  const queries = new ReadQueries(options.dbPath);
  const live = new LiveHub(queries);
  const gate = new ApiGate(options.token, options.publicRead ?? false);
  const router = apiRoutes(new Router(), { nats: options.nats, queries, log, sign: (path) => gate.sign(path) });
  let bundle: Bundle;
  try {
    bundle = await bundleClient();
  } catch (err) {
    queries.close();
    throw err;
  }

  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://ui.invalid");
    const asset = (type: string, body: string) => {
      res.writeHead(200, { "content-type": type, "cache-control": "no-cache", ...PAGE_HEADERS });
      res.end(body);
    };
    if (req.method === "GET" && url.pathname === "/app.js") return asset("text/javascript; charset=utf-8", bundle.js);
    if (req.method === "GET" && url.pathname === "/app.css") return asset("text/css; charset=utf-8", bundle.css);
    if (url.pathname === "/metrics") {
      // This process's Prometheus metrics, behind the API's token like every read of this port (see README "Metrics").
      if (req.method !== "GET") return sendJson(res, 405, { error: "only GET /metrics" });
      const refused = gate.refusal(req, url);
      if (refused) return sendJson(res, 401, { error: refused }, { "www-authenticate": 'Bearer realm="mapflow"' });
      return void metricsResponse(res);
    }
    if (!url.pathname.startsWith("/api/")) {
      // Every other page is the one-page app; it reads its route from the URL.
      if (req.method !== "GET") return sendJson(res, 405, { error: "only GET serves pages" });
      return asset("text/html; charset=utf-8", INDEX_HTML);
    }
    // Before routing, so that without the token not even the API's shape shows.
    const refusal = gate.refusal(req, url);
    if (refusal) return sendJson(res, 401, { error: refusal }, { "www-authenticate": 'Bearer realm="mapflow"' });
    if (url.pathname === "/api/live") return req.method === "GET" ? live.attach(res) : sendJson(res, 405, { error: `${req.method} is not allowed on /api/live; it is a GET event stream` });
    let found: ReturnType<Router["match"]>;
    try {
      found = router.match(req.method ?? "GET", url.pathname);
    } catch (err) {
      return sendJson(res, statusOf(err), { error: (err as Error).message });
    }
    if (found === undefined) return sendJson(res, 404, { error: `no API at ${url.pathname}; see the README's API section` });
    if (found === "wrong-method") return sendJson(res, 405, { error: `${req.method} is not allowed on ${url.pathname}` });
    void (async () => {
      try {
        if (req.method !== "GET") checkJsonBody(req);
        const body = await found.handler({ req, url, params: found.params }, res);
        // A handler that answered itself (a download) has sent its headers already.
        if (!res.headersSent) sendJson(res, 200, body);
      } catch (err) {
        const status = statusOf(err);
        if (status === 500) log.error({ err, path: url.pathname }, "UI API request failed");
        if (!res.headersSent) sendJson(res, status, { error: (err as Error).message });
        else res.destroy(); // cut short: the client must not take what it got for the whole answer
      }
    })();
  });

  const host = options.host ?? DEFAULT_UI_HOST;
  const wanted = options.port ?? DEFAULT_UI_PORT;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(wanted, host, () => {
        server.off("error", reject);
        resolve();
      });
    });
  } catch (err) {
    live.close();
    queries.close();
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EADDRINUSE") throw new BadInputError(`port ${wanted} on ${host} is in use (another mapflow UI?); pass another port, or 0 for any free one`, { cause: err });
    if (code === "EADDRNOTAVAIL") throw new BadInputError(`this machine has no address ${host} to serve the UI on; pass a local address such as 127.0.0.1`, { cause: err });
    throw err;
  }
  const { port } = server.address() as AddressInfo;
  const url = `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
  const publicRead = options.publicRead ?? false;
  log.info({ url, host, publicRead }, host === DEFAULT_UI_HOST ? "web UI listening on this machine only (--host / --ui-host to change)" : "web UI listening");
  if (!isLoopback(host)) {
    const reads = publicRead ? "; with public reads, anyone who reaches it sees every run, conf, result and log" : "";
    log.warn({ host }, `the web UI is open to the network over plain HTTP: its token crosses the network in clear text (put a TLS proxy in front)${reads}`);
  }
  return {
    url,
    token: options.token,
    async stop() {
      live.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      queries.close();
    },
  };
}
