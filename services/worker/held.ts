/**
 * Work in a worker's hands, from the moment a message arrives until it is
 * acked or handed back. One timer for all of it: each held message tells
 * JetStream it is still being worked on every `heartbeatMs` (so it is not
 * redelivered to another worker), and a try still running after
 * `startedAfterMs` is announced (InstanceStarted) once. A timer per message
 * cost more than the trivial tasks a wide map runs.
 */
import type { JsMsg } from "@nats-io/jetstream";

export type Hold = {
  /** The try's task code started now; `announce` is called once if it is still running after `startedAfterMs`. */
  running(startedAt: number, announce: () => void): void;
  /**
   * Whether the message may have gone to another worker meanwhile: once, its
   * heartbeat came `lapseMs` or more after the one before (the process was
   * paused or its event loop blocked), so its ack deadline may have passed.
   */
  lapsed(now: number): boolean;
  release(): void;
};

export type HeldWork = {
  hold(msg: JsMsg): Hold;
  /** Every message held now may have gone to another worker (the connection dropped, so its heartbeats may not have arrived). */
  lapseAll(): void;
  stop(): void;
};

type Entry = { msg: JsMsg; beatAt: number; lapsed: boolean; startedAt?: number; announce?: () => void };

export function heldWork(heartbeatMs: number, startedAfterMs: number, lapseMs: number): HeldWork {
  const entries = new Set<Entry>();
  const sweep = () => {
    const now = Date.now();
    for (const entry of entries) {
      if (now - entry.beatAt >= heartbeatMs) {
        if (now - entry.beatAt >= lapseMs) entry.lapsed = true;
        entry.msg.working();
        entry.beatAt = now;
      }
      if (entry.announce && now - entry.startedAt! >= startedAfterMs) {
        const announce = entry.announce;
        entry.announce = undefined;
        announce();
      }
    }
  };
  // A quarter of the shortest period, so neither is late by more than that.
  const timer = setInterval(sweep, Math.max(10, Math.min(heartbeatMs, startedAfterMs) / 4));
  return {
    hold(msg) {
      const entry: Entry = { msg, beatAt: Date.now(), lapsed: false };
      entries.add(entry);
      return {
        running(startedAt, announce) {
          entry.startedAt = startedAt;
          entry.announce = announce;
        },
        lapsed(now) {
          return entry.lapsed || now - entry.beatAt >= lapseMs;
        },
        release() {
          entries.delete(entry);
        },
      };
    },
    lapseAll() {
      for (const entry of entries) entry.lapsed = true;
    },
    stop() {
      clearInterval(timer);
      entries.clear();
    },
  };
}
