/**
 * Rebuilding a read model from records of the log or of an archive, with
 * the projector's own fold: all of it, or as it stood at a sequence or a
 * time (time travel), or one run's rows only.
 */
import { existsSync } from "node:fs";
import { eventsIn, type MapflowEvent } from "../../libs/events/index.ts";
import { decodeRecord, type LogRecord } from "../../libs/nats/index.ts";
import { ReadModel } from "../../libs/store/index.ts";
import { BadInputError, CodecError, SchemaTooNewError } from "../../libs/errors.ts";
import { EVENTS_PER_COMMIT, ProjectionFold } from "../projector/fold.ts";

export type Cut = {
  /** Apply events up to this sequence. */
  untilSeq?: number;
  /** Apply events the server stored at or before this time (epoch ms). */
  untilTime?: number;
  /** Only this run's events. */
  runId?: string;
};

/** `events`: those folded, an InstancesFinished counted as the outcomes it holds. */
export type Replayed = { readonly events: number; readonly skipped: number; readonly lastSeq: number; readonly ms: number };


/** Whether a record falls inside the cut; `false` past its end, so a reader can stop. */
function within(record: LogRecord, cut: Cut): boolean | "past" {
  if (cut.untilSeq !== undefined && record.seq > cut.untilSeq) return "past";
  if (cut.untilTime !== undefined && record.time > cut.untilTime) return "past";
  return cut.runId === undefined || record.subject.startsWith(`mf.evt.run.${cut.runId}.`);
}

/**
 * Folds `records` into `fold`; `inspect` sees each event first, with the fold
 * as it stood before it. A malformed record is counted and skipped, as the
 * projector does; one from a newer mapflow stops the replay.
 */
export async function foldRecords(
  records: AsyncIterable<LogRecord>,
  fold: ProjectionFold,
  cut: Cut = {},
  inspect?: (seq: number, event: MapflowEvent) => void,
): Promise<Replayed> {
  const started = performance.now();
  let events = 0;
  let skipped = 0;
  let lastSeq = 0;
  for await (const record of records) {
    const inside = within(record, cut);
    if (inside === "past") break;
    if (!inside) continue;
    let event: MapflowEvent | null;
    try {
      event = decodeRecord(record);
    } catch (err) {
      if (!(err instanceof CodecError) || err instanceof SchemaTooNewError) throw err;
      event = null;
      skipped++;
    }
    if (event) inspect?.(record.seq, event);
    fold.apply(record.seq, event);
    events += eventsIn(event);
    lastSeq = record.seq;
    if (fold.uncommitted >= EVENTS_PER_COMMIT) fold.commit();
  }
  fold.commit();
  return { events, skipped, lastSeq, ms: performance.now() - started };
}

/** Replays into a new SQLite file (never over an existing one: a replay is evidence). */
export async function replayToFile(records: AsyncIterable<LogRecord>, out: string, cut: Cut = {}): Promise<Replayed> {
  if (existsSync(out)) throw new BadInputError(`${out} already exists; replay writes a new file, so pass another --out or remove it`);
  const model = new ReadModel(out);
  try {
    return await foldRecords(records, new ProjectionFold(model, { keepFinished: true }), cut);
  } finally {
    model.close();
  }
}
