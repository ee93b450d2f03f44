/**
 * What `trigger --wait` and `run` show on stderr while a run goes on: a
 * live bar per mapped task on a terminal (cli-progress), plain lines now
 * and then when stderr is a pipe or a file. stdout keeps only the result.
 */
import { MultiBar, type SingleBar } from "cli-progress";
import type { RunState } from "../../libs/core/index.ts";
import { formatDuration, mappedProgress, pace, progressLine, type TaskProgress } from "./progress.ts";

export type ProgressReporter = {
  /** The run as folded so far; drawn a little later, so a burst of events draws once. */
  update(state: RunState): void;
  /** The run as it ended: the last figures, then the bars are let go (and the cursor shown again). Without a state, only that. */
  finish(state?: RunState): void;
};

/** How often a terminal's bars are redrawn, and a pipe gets its lines. */
const TTY_EVERY_MS = 100;
const PLAIN_EVERY_MS = 5000;

type Seen = { bar?: SingleBar; line?: string };

export function progressReporter(out: NodeJS.WriteStream = process.stderr, now = Date.now): ProgressReporter {
  const tty = Boolean(out.isTTY);
  const seen = new Map<string, Seen>();
  let bars: MultiBar | undefined;
  let latest: RunState | undefined;
  let timer: NodeJS.Timeout | undefined;

  const figures = (p: TaskProgress) => {
    let s = seen.get(p.taskId);
    if (!s) seen.set(p.taskId, (s = {}));
    return { s, ...pace(p, now() - p.startedAt) };
  };

  const drawBars = (state: RunState) => {
    bars ??= new MultiBar({
      stream: out,
      format: "{task} |{bar}| {value}/{total} {failed}| {rate}/s | ETA {left}",
      barsize: 30,
      barCompleteChar: "█",
      barIncompleteChar: "░",
      hideCursor: true,
      autopadding: true,
    });
    for (const p of mappedProgress(state)) {
      const { s, rate, etaMs } = figures(p);
      const payload = { task: `${p.taskId} [${p.total}]`, failed: p.failed > 0 ? `(${p.failed} failed) ` : "", rate: rate.toFixed(1), left: etaMs === null ? "?" : formatDuration(etaMs) };
      if (!s.bar) s.bar = bars.create(p.total, p.done, payload);
      else {
        s.bar.setTotal(p.total);
        s.bar.update(p.done, payload);
      }
    }
  };

  const printLines = (state: RunState, final: boolean) => {
    for (const p of mappedProgress(state)) {
      const { s, rate, etaMs } = figures(p);
      const line = progressLine(p, rate, etaMs);
      // A line says something new, or nothing: a task that has not moved stays quiet.
      if (s.line !== undefined && (s.line === line || (!final && s.line.startsWith(`${p.taskId} [${p.total}]: ${p.done}/`)))) continue;
      s.line = line;
      out.write(`${line}\n`);
    }
  };

  const draw = () => {
    timer = undefined;
    if (!latest) return;
    if (tty) drawBars(latest);
    else printLines(latest, false);
  };

  return {
    update(state) {
      latest = state;
      timer ??= setTimeout(draw, tty ? TTY_EVERY_MS : PLAIN_EVERY_MS).unref();
    },
    finish(state) {
      clearTimeout(timer);
      timer = undefined;
      if (tty) {
        if (state) drawBars(state);
        bars?.stop();
      } else if (state) printLines(state, true);
    },
  };
}
