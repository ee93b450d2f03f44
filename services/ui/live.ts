/**
 * Live updates for open pages, as server-sent events. The server, not each
 * browser, watches the projection: one cheap query every tick while anyone
 * listens, and one message per tick naming the runs that changed, however
 * many events that tick held. Pages refetch only what they show of those
 * runs, so a run of 10,000 instances costs a few small reads a second.
 */
import type { ServerResponse } from "node:http";
import type { ReadQueries } from "../../libs/store/queries.ts";

export type Change = { seq: number; runs: { runId: string; dagId: string; state: string }[]; dags: boolean };

/** How often the projection is checked while a page listens. */
export const TICK_MS = 250;
/** A comment line this often keeps proxies from closing a quiet stream. */
const KEEPALIVE_MS = 15_000;

export class LiveHub {
  private readonly clients = new Set<ServerResponse>();
  private seq: number;
  private dagsMark: string;
  private timer: NodeJS.Timeout | undefined;
  private keepalive: NodeJS.Timeout | undefined;

  constructor(private readonly queries: ReadQueries) {
    this.seq = queries.lastSeq();
    this.dagsMark = this.queries.dagsMark();
  }

  private resync(): void {
    this.seq = this.queries.lastSeq();
    this.dagsMark = this.queries.dagsMark();
  }

  /** Holds the response open as an event stream until the page goes away. */
  attach(res: ServerResponse): void {
    if (this.clients.size === 0) this.resync(); // nothing was watched meanwhile: start from now
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-store", connection: "keep-alive" });
    res.write(`retry: 2000\nevent: hello\ndata: ${JSON.stringify({ seq: this.seq })}\n\n`);
    this.clients.add(res);
    res.on("close", () => {
      this.clients.delete(res);
      if (this.clients.size === 0) this.pause();
    });
    this.timer ??= setInterval(() => this.tick(), TICK_MS);
    this.keepalive ??= setInterval(() => this.broadcast(": keepalive\n\n"), KEEPALIVE_MS);
  }

  private tick(): void {
    const seq = this.queries.lastSeq();
    if (seq === this.seq) return;
    const runs = this.queries.changedRuns(this.seq);
    const mark = this.queries.dagsMark();
    const change: Change = { seq, runs, dags: mark !== this.dagsMark };
    this.seq = seq;
    this.dagsMark = mark;
    this.broadcast(`event: change\ndata: ${JSON.stringify(change)}\n\n`);
  }

  private broadcast(text: string): void {
    for (const res of this.clients) res.write(text);
  }

  private pause(): void {
    clearInterval(this.timer);
    clearInterval(this.keepalive);
    this.timer = this.keepalive = undefined;
  }

  close(): void {
    this.pause();
    for (const res of this.clients) res.end();
    this.clients.clear();
  }
}
