/**
 * Stores what each try writes through `ctx.log` on its own subject, for the
 * UI and `mapflow logs`; the worker still prints every line as before.
 * Nothing is made for a try whose task never touches `ctx.log`: its
 * TryLog is made by the context's lazy getter. Storing never holds up or
 * fails the task: lines are published as they come, and the worker only
 * waits, briefly, for them before it records the try's outcome.
 */
import { encodeLogLine } from "../../libs/codec/index.ts";
import type { LogLine } from "../../libs/core/logline.ts";
import type { WorkItem } from "../../libs/core/work.ts";
import { capturing, type Logger } from "../../libs/log/index.ts";
import { subjects } from "../../libs/names/index.ts";
import { MAX_LOG_LINE_BYTES, type Nats } from "../../libs/nats/index.ts";

/** One try's logger, and a way to wait until what it wrote is stored. */
export type TryLog = {
  readonly log: Logger;
  /** Settles once the lines in flight are stored or have failed, or after STORE_WAIT_MS; undefined when none are in flight. */
  stored(): Promise<void> | undefined;
};

/** Makes a try's TryLog; one per worker. */
export type TryLogs = (item: WorkItem) => TryLog;

/**
 * The longest an outcome waits for its try's lines: a NATS hiccup must not
 * hold a result (an ack takes up to 5 s to time out), and a line stored
 * after its outcome is still read with its try.
 */
const STORE_WAIT_MS = 2000;

/** Ends a truncated line's message, before the size it had. */
const TRUNCATED = "…[truncated]";

export function tryLogs(nats: Nats, workerLog: Logger): TryLogs {
  const capture = capturing(workerLog);
  return (item) => {
    const instance = { runId: item.runId, taskId: item.taskId, mapIndex: item.mapIndex, try: item.try };
    const subject = subjects.tryLog(item.runId, item.taskId, item.mapIndex, item.try);
    let inFlight = 0;
    let idle: (() => void) | undefined;
    let warned = false;
    const settle = () => {
      if (--inFlight === 0) idle?.();
    };
    const failed = (err: unknown) => {
      // Once per try, not once per line: a NATS outage would otherwise double the worker's own log.
      if (!warned) workerLog.warn({ err, ...instance }, "could not store a log line of this try (later ones that fail are not reported)");
      warned = true;
      settle();
    };
    const log = capture(instance, (line) => {
      const bytes = storable(line);
      inFlight++;
      nats.publisher.publish(subject, bytes).then(settle, failed);
    });
    return {
      log,
      stored() {
        if (inFlight === 0) return undefined;
        return new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            workerLog.warn({ ...instance, inFlight }, `log lines of this try not stored after ${STORE_WAIT_MS} ms; recording its outcome anyway`);
            idle = undefined;
            resolve();
          }, STORE_WAIT_MS);
          idle = () => {
            clearTimeout(timer);
            idle = undefined;
            resolve();
          };
        });
      },
    };
  };
}

/** The line's bytes, cut to the stream's limit: its head kept (fields as JSON after the message), and marked. */
function storable(line: LogLine): Uint8Array {
  const bytes = encodeLogLine(line);
  if (bytes.byteLength <= MAX_LOG_LINE_BYTES) return bytes;
  const text = line.fields ? `${line.msg} ${JSON.stringify(line.fields)}` : line.msg;
  // A UTF-16 unit takes at most 3 bytes in UTF-8 (a 4-byte character is two units): this many always fit, with room for the rest.
  let head = text.slice(0, Math.floor((MAX_LOG_LINE_BYTES - 256) / 3));
  if (/[\uD800-\uDBFF]$/.test(head)) head = head.slice(0, -1); // not half a character
  return encodeLogLine({ at: line.at, level: line.level, msg: `${head}${TRUNCATED} (${bytes.byteLength} bytes)` });
}
