/**
 * Run history: the run's events on a timeline, and a slider that shows the
 * graph as it stood after any event — folded here, in the browser, with the
 * same `evolve` the coordinator and the projector use.
 */
import { useMemo, useState } from "preact/hooks";
import { evolve } from "../../../libs/core/evolve.ts";
import type { RunState } from "../../../libs/core/state.ts";
import { enc, get, touchesRun, useLive, type History } from "./api.ts";
import { Graph, type TaskView } from "./graph.tsx";

const TIMELINE_ROWS = 400;

function viewsOf(state: RunState | undefined): Map<string, TaskView> {
  const views = new Map<string, TaskView>();
  if (!state) return views;
  for (const [id, task] of Object.entries(state.tasks)) {
    const counts: Record<string, number> = {};
    for (const i of task.instances ?? []) counts[i.state] = (counts[i.state] ?? 0) + 1;
    const mapCount = task.instances ? task.instances.length - (task.removed ?? 0) : null;
    views.set(id, { state: task.state, mapped: task.mapped, mapCount: task.mapped ? mapCount : null, counts });
  }
  return views;
}

/** The state after the first `count` events (evolve updates in place, so each position folds from the start). */
function foldTo(history: History, count: number): RunState | undefined {
  let state: RunState | undefined;
  for (const { event } of history.events.slice(0, count)) state = evolve(state, event);
  return state;
}

function describe(event: History["events"][number]["event"]): string {
  const e = event as { taskId?: string; mapIndex?: number; mapIndexes?: number[]; outcomes?: unknown[]; state?: string };
  const where = e.taskId ? ` ${e.taskId}${e.mapIndex !== undefined && e.mapIndex >= 0 ? `[${e.mapIndex}]` : ""}` : "";
  const many = e.mapIndexes ? ` ×${e.mapIndexes.length}` : e.outcomes ? ` ×${e.outcomes.length}` : "";
  return `${event.type}${where}${many}${e.state ? ` → ${e.state}` : ""}`;
}

export function HistoryView({ runId }: { runId: string }) {
  const { data, error } = useLive(() => get<History>(`/api/runs/${enc(runId)}/history`), [runId], touchesRun(runId));
  const [at, setAt] = useState<number | null>(null); // null: follow the latest event
  const count = data ? (at === null ? data.events.length : Math.min(at, data.events.length)) : 0;
  const state = useMemo(() => (data ? foldTo(data, count) : undefined), [data, count]);
  const views = useMemo(() => viewsOf(state), [state]);
  if (error) return <p class="error">{error}</p>;
  if (!data) return <p class="muted">loading history…</p>;
  const current = data.events[count - 1];
  // The timeline lists a window around the chosen event: a wide run has more events than a page can hold.
  const from = Math.max(0, count - TIMELINE_ROWS / 2);
  return (
    <div class="history-view">
      <div class="slider">
        <input
          type="range" min={1} max={data.events.length} value={count} aria-label="event"
          onInput={(e) => {
            const v = Number((e.target as HTMLInputElement).value);
            setAt(v >= data.events.length ? null : v);
          }}
        />
        <span class="at" data-count={count}>
          event {count} of {data.events.length}{current ? ` · #${current.seq} · ${new Date(current.event.at).toLocaleTimeString()} · ${describe(current.event)}` : ""}
          {at === null ? " (live)" : ""}
        </span>
        {data.truncated ? <span class="error"> history cut at {data.events.length.toLocaleString()} events</span> : null}
      </div>
      {state ? <Graph spec={state.spec} views={views} /> : null}
      <ol class="timeline" start={from + 1}>
        {data.events.slice(from, from + TIMELINE_ROWS).map(({ seq, event }, k) => {
          const i = from + k;
          return (
            <li key={seq} class={i === count - 1 ? "on" : i >= count ? "future" : ""} onClick={() => setAt(i + 1 >= data.events.length ? null : i + 1)}>
              <span class="seq">#{seq}</span> <span class="muted">{new Date(event.at).toLocaleTimeString()}</span> {describe(event)}
            </li>
          );
        })}
      </ol>
    </div>
  );
}
