/**
 * Serving the registry: a small HTTP server for `--metrics-port`
 * (GET /metrics, nothing else), and the answer the web UI gives at its own
 * `/metrics`. The metrics port asks for no token: like most exporters it is
 * bound to 127.0.0.1 unless told otherwise, and what it shows is
 * operational (DAG, task and queue names, counts, timings), never a
 * run's conf, results or logs. Bound elsewhere, it says so in the log.
 */
import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { BadInputError } from "../errors.ts";
import type { Logger } from "../log/index.ts";
import { enableProcessMetrics, registry } from "./registry.ts";

export const DEFAULT_METRICS_HOST = "127.0.0.1";

export type MetricsServer = { readonly url: string; stop(): Promise<void> };

/** Writes the registry's metrics in Prometheus' text format. */
export async function metricsResponse(res: ServerResponse): Promise<void> {
  enableProcessMetrics();
  try {
    const body = await registry.metrics();
    res.writeHead(200, { "content-type": registry.contentType, "cache-control": "no-store" });
    res.end(body);
  } catch (err) {
    res.writeHead(500, { "content-type": "text/plain; charset=utf-8" });
    res.end(`could not collect the metrics: ${(err as Error).message}\n`);
  }
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^(::ffff:)?127\.\d+\.\d+\.\d+$/.test(host);
}

/** Serves GET /metrics on `host:port` (port 0: any free one) until stopped. */
export async function serveMetrics(options: { port: number; host?: string; log: Logger }): Promise<MetricsServer> {
  const host = options.host ?? DEFAULT_METRICS_HOST;
  enableProcessMetrics();
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain; charset=utf-8" });
      res.end("mapflow serves its Prometheus metrics at /metrics\n");
      return;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { "content-type": "text/plain; charset=utf-8", allow: "GET" });
      res.end("only GET /metrics\n");
      return;
    }
    void metricsResponse(res);
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(options.port, host, () => {
        server.off("error", reject);
        resolve();
      });
    });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EADDRINUSE") throw new BadInputError(`--metrics-port ${options.port} on ${host} is in use; pass another port, or 0 for any free one`, { cause: err });
    if (code === "EADDRNOTAVAIL") throw new BadInputError(`this machine has no address ${host} to serve metrics on (--metrics-host); pass a local address such as 127.0.0.1`, { cause: err });
    throw err;
  }
  const { port } = server.address() as AddressInfo;
  const url = `http://${host.includes(":") ? `[${host}]` : host}:${port}/metrics`;
  if (isLoopback(host)) options.log.info({ url }, "serving Prometheus metrics");
  else options.log.warn({ url }, "serving Prometheus metrics to the network without a token: anyone who reaches this port reads DAG, task and queue names and counts");
  return {
    url,
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
