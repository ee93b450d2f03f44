/** Reading Prometheus' text format in tests: scrape a /metrics URL, find a series by name and labels. */
import assert from "node:assert/strict";

export type Series = { readonly name: string; readonly labels: Readonly<Record<string, string>>; readonly value: number };

/** The samples of a text exposition (comments skipped). */
export function parseMetrics(text: string): Series[] {
  const out: Series[] = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, key, value] of m[2]?.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g) ?? []) labels[key!] = value!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

export type Scrape = {
  readonly text: string;
  /** The value of the one series with this name whose labels include `labels`; undefined when there is none. */
  value(name: string, labels?: Record<string, string>): number | undefined;
  has(name: string): boolean;
};

export function scrapeOf(text: string): Scrape {
  const series = parseMetrics(text);
  return {
    text,
    value(name, labels = {}) {
      const found = series.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
      assert.ok(found.length <= 1, `${name} ${JSON.stringify(labels)} matches ${found.length} series`);
      return found[0]?.value;
    },
    has: (name) => series.some((s) => s.name === name),
  };
}

/** GETs a /metrics URL and parses it; fails on anything but 200 with Prometheus' content type. */
export async function scrape(url: string, headers: Record<string, string> = {}): Promise<Scrape> {
  const res = await fetch(url, { headers });
  const text = await res.text();
  assert.equal(res.status, 200, `GET ${url}: ${res.status} ${text}`);
  assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  return scrapeOf(text);
}

/** The URL a service printed for its --metrics-port. */
export function metricsUrl(output: string): string {
  const url = /metrics at (http:\/\/\S+\/metrics)/.exec(output)?.[1];
  assert.ok(url, `no 'metrics at' line in:\n${output}`);
  return url;
}

/** Scrapes until `check` passes (a value that settles, such as a projector catching up), or fails with the last scrape. */
export async function scrapeUntil(url: string, check: (s: Scrape) => boolean, timeoutMs = 20_000, headers: Record<string, string> = {}): Promise<Scrape> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await scrape(url, headers);
    if (check(s)) return s;
    if (Date.now() > deadline) assert.fail(`the metrics at ${url} did not reach the expected values in ${timeoutMs} ms:\n${s.text.split("\n").filter((l) => l.startsWith("mapflow_")).join("\n")}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
