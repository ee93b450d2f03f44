/**
 * Prometheus metrics: one registry per process, every metric mapflow
 * defines, and what feeds them. In `standalone` every service shares this
 * registry; the `service` label tells the coordinator's folds from the
 * projector's.
 *
 * The hot paths (an append, a folded event, a finished try) cost one
 * `n++` on a slot they keep (`Tally`), or a few array writes for a
 * duration (`DurationHistogram`): prom-client's own `inc` and `observe`
 * hash their labels on every call (0.5 to 1.5 µs, about 1% of a trivial
 * instance's CPU), so the numbers are kept here and handed to prom-client
 * only when something scrapes. Gauges that need a JetStream request (queue
 * depth, projection lag) are read on the scrape too, never between.
 */
import { Counter, Gauge, type Metric } from "prom-client";
import { registry } from "./registry.ts";
import type { MapflowEvent } from "../events/index.ts";

export { enableProcessMetrics, registry } from "./registry.ts";

/** A count kept as a plain number; prom-client reads it on a scrape. */
export type Slot = { n: number; reported: number; readonly labels: Readonly<Record<string, string>> };

/**
 * A prom-client counter fed from slots: `slot(...)` once per label set
 * (callers keep it), then `slot.n++` on the hot path.
 */
class TallyCounter {
  private readonly slots = new Map<string, Slot>();
  private readonly counter: Counter<string>;

  constructor(name: string, help: string, private readonly labelNames: readonly string[]) {
    const slots = this.slots;
    this.counter = new Counter({
      name, help, labelNames: [...labelNames], registers: [registry],
      collect() {
        for (const slot of slots.values()) {
          if (slot.n === slot.reported) continue;
          this.inc(slot.labels, slot.n - slot.reported);
          slot.reported = slot.n;
        }
      },
    });
  }

  /** The slot of these label values (in `labelNames` order), made the first time; the series shows 0 from then on. */
  slot(...values: string[]): Slot {
    const key = values.join("\u0000");
    let slot = this.slots.get(key);
    if (!slot) {
      const labels = Object.fromEntries(this.labelNames.map((name, i) => [name, values[i] ?? ""]));
      slot = { n: 0, reported: 0, labels };
      this.slots.set(key, slot);
      this.counter.inc(labels, 0);
    }
    return slot;
  }
}

/** Slots by one label value, looked up with one Map read. */
export class Tally {
  private readonly slots = new Map<string, Slot>();
  constructor(private readonly counter: TallyCounter, private readonly fixed: readonly string[] = []) {}

  add(value: string, by = 1): void {
    this.slot(value).n += by;
  }

  /** The slot itself, for a caller that counts one label value only (`slot.n++`). */
  slot(value: string): Slot {
    let slot = this.slots.get(value);
    if (!slot) this.slots.set(value, (slot = this.counter.slot(...this.fixed, value)));
    return slot;
  }
}

/** Slots by two label values (a DAG and a task). */
export class Tally2 {
  private readonly slots = new Map<string, Map<string, Slot>>();
  constructor(private readonly counter: TallyCounter) {}

  add(a: string, b: string, by = 1): void {
    let inner = this.slots.get(a);
    if (!inner) this.slots.set(a, (inner = new Map()));
    let slot = inner.get(b);
    if (!slot) inner.set(b, (slot = this.counter.slot(a, b)));
    slot.n += by;
  }
}

/** Buckets for a try's duration: tasks run from milliseconds to hours. */
export const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 1800, 3600] as const;

type HistogramSlot = { readonly dag: string; readonly task: string; readonly counts: Float64Array; sum: number; count: number };

/**
 * A histogram by DAG and task, kept in plain arrays and written out in
 * prom-client's exposition format (registered as a metric of its own, as
 * prom-client's collectors are).
 */
export class DurationHistogram {
  readonly type = "histogram";
  readonly aggregator = "sum";
  private readonly slots = new Map<string, Map<string, HistogramSlot>>();

  constructor(readonly name: string, readonly help: string, private readonly buckets: readonly number[] = DURATION_BUCKETS) {
    registry.registerMetric(this as unknown as Metric);
  }

  observe(dag: string, task: string, seconds: number): void {
    let inner = this.slots.get(dag);
    if (!inner) this.slots.set(dag, (inner = new Map()));
    let slot = inner.get(task);
    if (!slot) inner.set(task, (slot = { dag, task, counts: new Float64Array(this.buckets.length), sum: 0, count: 0 }));
    const { buckets } = this;
    let i = 0;
    while (i < buckets.length && seconds > buckets[i]!) i++;
    if (i < buckets.length) slot.counts[i]!++;
    slot.sum += seconds;
    slot.count++;
  }

  /** What prom-client's registry formats: cumulative buckets, +Inf, sum and count per label set. */
  async get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: { metricName: string; labels: Record<string, string | number>; value: number }[] }> {
    const values: { metricName: string; labels: Record<string, string | number>; value: number }[] = [];
    for (const inner of this.slots.values()) {
      for (const slot of inner.values()) {
        const labels = { dag: slot.dag, task: slot.task };
        let cumulative = 0;
        this.buckets.forEach((le, i) => {
          cumulative += slot.counts[i]!;
          values.push({ metricName: `${this.name}_bucket`, labels: { ...labels, le }, value: cumulative });
        });
        values.push({ metricName: `${this.name}_bucket`, labels: { ...labels, le: "+Inf" }, value: slot.count });
        values.push({ metricName: `${this.name}_sum`, labels, value: slot.sum });
        values.push({ metricName: `${this.name}_count`, labels, value: slot.count });
      }
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    this.slots.clear();
  }
}

/**
 * Readers a gauge asks on each scrape; a service adds its own while it
 * runs (`watch` returns the way to remove it). A reader that fails leaves
 * its series out of that scrape rather than failing the scrape.
 */
class Readers<T> {
  private readonly readers = new Set<() => Promise<T>>();
  /** One read serves every gauge of the same scrape (they are collected together). */
  private last: { at: number; values: Promise<T[]> } | null = null;

  watch(reader: () => Promise<T>): () => void {
    this.readers.add(reader);
    this.last = null;
    return () => {
      this.readers.delete(reader);
      this.last = null;
    };
  }

  read(): Promise<T[]> {
    if (this.last && Date.now() - this.last.at < 1000) return this.last.values;
    const values = Promise.all([...this.readers].map((read) => read().then((v) => [v], () => [] as T[]))).then((all) => all.flat());
    this.last = { at: Date.now(), values };
    return values;
  }
}

// ---------------------------------------------------------------------------
// The metrics.

const appended = new TallyCounter("mapflow_events_appended_total", "Events this process appended to the log (duplicates the log dropped are not counted), by event type.", ["type"]);
/**
 * Counts one event by type, an InstancesFinished as the outcomes it holds
 * (by theirs), so the counts mean the same however a worker grouped them;
 * null for a message that is not a valid event.
 */
export function countEvent(tally: Tally, event: MapflowEvent | null): void {
  if (event?.type !== "InstancesFinished") return tally.add(event?.type ?? "malformed");
  const failed = event.outcomes.filter((o) => o.error).length;
  if (failed) tally.add("InstanceFailed", failed);
  if (failed < event.outcomes.length) tally.add("InstanceSucceeded", event.outcomes.length - failed);
}

/** Counts an acknowledged append: `countEvent(eventsAppended, event)`. */
export const eventsAppended = new Tally(appended);

const applied = new TallyCounter("mapflow_events_applied_total", "Events folded by a service (the coordinator's decisions, the projector's read model), by event type; 'malformed' for a message that is not a valid event.", ["service", "type"]);
/** The fold counter of one service ("coordinator", "projector"). */
export const eventsApplied = (service: string): Tally => new Tally(applied, [service]);

const retries = new TallyCounter("mapflow_instance_retries_total", "Retries the coordinator decided (InstanceRetried appended), by DAG and task.", ["dag", "task"]);
export const instanceRetries = new Tally2(retries);

const redeliveries = new TallyCounter("mapflow_work_redeliveries_total",
  "Work messages a worker received that had been delivered before: an ack deadline passed (a worker died or stalled), a worker handed it back, or it waited out a retry delay. By queue.", ["queue"]);
export const workRedeliveries = new Tally(redeliveries);

const handedBack = new TallyCounter("mapflow_work_handed_back_total", "Tries a stopping worker handed back unfinished (nak with a delay), for another worker to run; not failures. By queue.", ["queue"]);
export const workHandedBack = new Tally(handedBack);

export const instanceDuration = new DurationHistogram("mapflow_instance_duration_seconds", "How long a try's task code ran, from its start on a worker to its outcome (success or failure), by DAG and task.");

/** A queue's consumer as JetStream reports it. */
export type QueueDepth = { readonly queue: string; readonly pending: number; readonly ackPending: number };
export const queueDepths = new Readers<QueueDepth[]>();

async function collectQueues(gauge: Gauge<string>, field: "pending" | "ackPending"): Promise<void> {
  const reads = await queueDepths.read();
  gauge.reset();
  for (const depths of reads) for (const depth of depths) gauge.set({ queue: depth.queue }, depth[field]);
}

new Gauge({
  name: "mapflow_work_pending", help: "Work messages waiting in a queue, not yet delivered to a worker (the consumer's num_pending), read from JetStream on each scrape.",
  labelNames: ["queue"], registers: [registry],
  async collect() {
    await collectQueues(this, "pending");
  },
});
new Gauge({
  name: "mapflow_work_ack_pending", help: "Work messages delivered to workers and not yet acknowledged (the consumer's num_ack_pending; JetStream stops delivering at max_ack_pending), read on each scrape.",
  labelNames: ["queue"], registers: [registry],
  async collect() {
    await collectQueues(this, "ackPending");
  },
});

/** How far a projector's read model is behind the log. */
export type ProjectionLag = { readonly events: number; readonly seconds: number };
export const projectionLags = new Readers<ProjectionLag>();

async function collectLag(gauge: Gauge<string>, field: keyof ProjectionLag): Promise<void> {
  const lags = await projectionLags.read();
  gauge.reset();
  // One projector per process as a rule; with more, the one furthest behind.
  if (lags.length) gauge.set(Math.max(...lags.map((lag) => lag[field])));
}

new Gauge({
  name: "mapflow_projection_lag_events", help: "Events in the log that the projector has not yet written to its read model, read on each scrape.", registers: [registry],
  async collect() {
    await collectLag(this, "events");
  },
});
new Gauge({
  name: "mapflow_projection_lag_seconds", help: "Age of the oldest event in the log that the projector has not yet written to its read model (0 when caught up), read on each scrape.", registers: [registry],
  async collect() {
    await collectLag(this, "seconds");
  },
});

const leader = new Gauge({ name: "mapflow_coordinator_leader", help: "1 while this process's coordinator holds the leadership lease and decides; 0 while it stands by.", registers: [registry] });
/** Set by the lease loop as leadership is taken and given up. */
export function setCoordinatorLeader(leading: boolean): void {
  leader.set(leading ? 1 : 0);
}

/** Tries a worker's task code is running now, by queue. */
export const runningTries = new Readers<{ queue: string; running: number }>();
new Gauge({
  name: "mapflow_worker_tries_running", help: "Tries whose task code a worker is running now, by queue.", labelNames: ["queue"], registers: [registry],
  async collect() {
    const reads = await runningTries.read();
    this.reset();
    const byQueue = new Map<string, number>();
    for (const { queue, running } of reads) byQueue.set(queue, (byQueue.get(queue) ?? 0) + running);
    for (const [queue, running] of byQueue) this.set({ queue }, running);
  },
});

export { DEFAULT_METRICS_HOST, metricsResponse, serveMetrics, type MetricsServer } from "./serve.ts";
