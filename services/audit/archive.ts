/**
 * Archives of the log (`mapflow db clean --archive`): JSON lines, one event
 * a line, each with its stream sequence, subject, server time, type and
 * schema version, and its bytes exactly as the stream held them (base64
 * msgpack), so `replay --from-archive` decodes and upcasts them the same
 * way the log would. Written to a temporary name and renamed when whole.
 */
import { createReadStream, createWriteStream, renameSync, rmSync } from "node:fs";
import { once } from "node:events";
import { createInterface } from "node:readline";
import type { LogRecord } from "../../libs/nats/index.ts";
import { BadInputError } from "../../libs/errors.ts";

type Line = { seq: number; subject: string; time: number; type?: string; schema?: number; data: string };

export async function writeArchive(path: string, records: AsyncIterable<LogRecord>): Promise<number> {
  const partial = `${path}.partial`;
  const out = createWriteStream(partial, { flags: "wx" });
  let written = 0;
  try {
    for await (const r of records) {
      const line: Line = { seq: r.seq, subject: r.subject, time: r.time, type: r.type, schema: r.schema, data: Buffer.from(r.data).toString("base64") };
      if (!out.write(`${JSON.stringify(line)}\n`)) await once(out, "drain");
      written++;
    }
    out.end();
    await once(out, "finish");
  } catch (err) {
    out.destroy();
    rmSync(partial, { force: true });
    throw err;
  }
  renameSync(partial, path);
  return written;
}

export async function* readArchive(path: string): AsyncGenerator<LogRecord> {
  const lines = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
  let n = 0;
  for await (const text of lines) {
    n++;
    if (!text.trim()) continue;
    let line: Line;
    try {
      line = JSON.parse(text) as Line;
    } catch (err) {
      throw new BadInputError(`${path} line ${n} is not JSON (${(err as Error).message}); is this a mapflow archive?`);
    }
    if (!Number.isInteger(line.seq) || typeof line.subject !== "string" || typeof line.data !== "string") {
      throw new BadInputError(`${path} line ${n} is not an archived event (it needs seq, subject and data)`);
    }
    yield { seq: line.seq, subject: line.subject, time: line.time, type: line.type, schema: line.schema, data: Buffer.from(line.data, "base64") };
  }
}
