/** pino loggers: JSON lines, pretty on a TTY; level from MAPFLOW_LOG_LEVEL (default "info"). */
import { pino, type Logger } from "pino";

export type { Logger };

export function createLogger(service: string, level = process.env.MAPFLOW_LOG_LEVEL ?? "info"): Logger {
  const pretty = process.stderr.isTTY && process.env.MAPFLOW_LOG_FORMAT !== "json";
  return pino({
    name: service,
    level,
    base: { service },
    redact: { paths: ["*.password", "*.token", "*.secret", "env.*"], censor: "[redacted]" },
    ...(pretty
      ? { transport: { target: "pino-pretty", options: { destination: 2, colorize: true, ignore: "pid,hostname" } } }
      : {}),
  }, pretty ? undefined : pino.destination(2));
}
