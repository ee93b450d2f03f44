/** pino loggers: JSON lines, pretty on a TTY; level from MAPFLOW_LOG_LEVEL (default "info"). */
import { pino, type DestinationStream, type Logger } from "pino";
import type { LogLevel, LogLine } from "../core/logline.ts";
import { REDACTED, redactSecretFields } from "../secrets/index.ts";

export type { Logger };

/**
 * Secrets never reach a log, printed or stored. A field named like a secret
 * (`password`, `DB_PASSWORD`, `apiKey`, `headers.authorization`: see
 * isSecretName) is redacted wherever it sits, eight levels down, in a
 * logged object or a logged error's own fields (an HTTP client's error
 * carries its request headers); every value under an `env` field is
 * redacted whatever its name, as an environment holds secrets under any
 * name. pino's paths cover `env` and the plainest names, in child loggers'
 * bindings too; other names need a pattern, which paths cannot express, so
 * the log formatter and the error serialiser apply one. A task's captured
 * lines are redacted whole as well (see capturing).
 */
const PLAIN_SECRETS = ["password", "secret", "token", "apiKey", "api_key", "authorization"];
const SECRETS = {
  redact: { paths: ["env.*", "*.env.*", ...PLAIN_SECRETS, ...PLAIN_SECRETS.map((name) => `*.${name}`)], censor: REDACTED },
  formatters: { log: (fields: Record<string, unknown>) => redactSecretFields(fields) },
  serializers: { err: (err: Error) => redactSecretFields(pino.stdSerializers.err(err) as unknown as Record<string, unknown>) },
} satisfies pino.LoggerOptions;

export function createLogger(service: string, level = process.env.MAPFLOW_LOG_LEVEL ?? "info"): Logger {
  const pretty = process.stderr.isTTY && process.env.MAPFLOW_LOG_FORMAT !== "json";
  return pino({
    name: service,
    level,
    base: { service },
    ...SECRETS,
    ...(pretty
      ? { transport: { target: "pino-pretty", options: { destination: 2, colorize: true, ignore: "pid,hostname" } } }
      : {}),
  }, pretty ? undefined : pino.destination(2));
}

/** Makes a logger with `bindings` whose lines, and those of every child made from it, also reach `sink`. */
export type Capture = (bindings: Record<string, unknown>, sink: (line: LogLine) => void) => Logger;

/** Where a captured logger keeps its sink; its children inherit it, as they inherit everything from their parent. */
const SINK = Symbol("mapflow.capture");
type Sink = { readonly take: (line: LogLine) => void; readonly bound: ReadonlySet<string> };

/**
 * Loggers whose lines are printed as `parent`'s are and also handed, as
 * `LogLine`s, to a sink of their own. The line is taken from what pino
 * wrote, so the sink sees exactly what is printed: the message formatted,
 * errors serialised, secrets redacted. Lines at `level` and above are
 * captured even where `parent`'s level would not print them (a worker
 * quiet at "warn" still stores its tasks' "info").
 *
 * The root is made here once; a captured logger is one pino child, made
 * only when asked for.
 */
export function capturing(parent: Logger, level: LogLevel = "info"): Capture {
  // pino keeps a logger's destination under a symbol it exports for integrations like this one.
  const printed = (parent as unknown as Record<symbol, DestinationStream>)[pino.symbols.streamSym]!;
  const printFrom = parent.levelVal;
  const inherited = parent.bindings();
  const always = ["level", "time", "msg", ...Object.keys(inherited)];
  const destination = {
    // pino then names the logger that wrote each line (lastLogger) and its level, before it calls write.
    [pino.symbols.needsMetadataGsym]: true as const,
    lastLevel: 0,
    lastLogger: undefined as Logger | undefined,
    write(line: string) {
      const print = this.lastLevel >= printFrom;
      const sink = (this.lastLogger as unknown as Record<symbol, Sink | undefined> | undefined)?.[SINK];
      if (!sink) {
        if (print) printed.write(line);
        return;
      }
      // Capturing must never throw into the task that logged.
      try {
        // Redacted again whole: pino runs a child logger's bindings (`ctx.log.child({ apiKey })`) through no formatter.
        const parsed = JSON.parse(line) as Record<string, unknown>;
        const record = redactSecretFields(parsed);
        if (print) printed.write(record === parsed ? line : `${JSON.stringify(record)}\n`);
        sink.take(logLine(record, this.lastLevel, sink.bound));
      } catch (err) {
        parent.warn({ err }, "could not capture a log line");
      }
    },
  };
  const rootLevel = printFrom <= pino.levels.values[level]! ? parent.level : level;
  const root = pino({ level: rootLevel, base: null, ...SECRETS }, destination).child(inherited);
  return (bindings, take) => {
    const logger = root.child(bindings);
    Object.defineProperty(logger, SINK, { value: { take, bound: new Set([...always, ...Object.keys(bindings)]) } satisfies Sink });
    return logger;
  };
}

/** A printed pino line as a `LogLine`: what the captured logger was made with is left out of its fields. */
function logLine(record: Record<string, unknown>, level: number, bound: ReadonlySet<string>): LogLine {
  let fields: Record<string, unknown> | undefined;
  for (const key in record) {
    if (!bound.has(key)) (fields ??= {})[key] = record[key];
  }
  return {
    at: typeof record["time"] === "number" ? record["time"] : Date.now(),
    // Only the standard levels exist: no logger here declares custom ones.
    level: pino.levels.labels[level] as LogLevel,
    msg: typeof record["msg"] === "string" ? record["msg"] : "",
    ...(fields ? { fields } : {}),
  };
}
