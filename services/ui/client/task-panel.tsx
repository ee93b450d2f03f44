/**
 * The task detail panel: a task's state and, for a mapped task, every
 * instance — sortable, filterable by state, a page at a time from the
 * server, so a task of 100,000 instances opens as fast as one of ten.
 * Instances can be picked and cleared together.
 */
import { useState } from "preact/hooks";
import { enc, get, post, touchesRun, useLive, type InstancePage, type TaskRow } from "./api.ts";
import { InstanceDetail } from "./instance.tsx";
import { colourOf, countsText, sortedCounts } from "./states.ts";
import { setQuery, useLocation } from "./route.ts";
import { taskLabel } from "./graph.tsx";
import { duration, time } from "./format.ts";

const PAGE = 100;
const COLUMNS: [string, string][] = [["map_index", "map index"], ["state", "state"], ["tries", "tries"], ["started_at", "start"], ["duration", "duration"], ["worker", "worker"]];


export function TaskPanel({ runId, task, finished, onAction }: { runId: string; task: TaskRow; finished: boolean; onAction: (msg: string) => void }) {
  const loc = useLocation();
  const state = loc.searchParams.get("state") ?? "";
  const sort = loc.searchParams.get("sort") ?? "map_index";
  const desc = loc.searchParams.get("order") === "desc";
  const offset = Number(loc.searchParams.get("offset") ?? 0);
  const open = loc.searchParams.get("instance");
  const [picked, setPicked] = useState<ReadonlySet<number>>(new Set());
  const path = `/api/runs/${enc(runId)}/tasks/${enc(task.taskId)}/instances?state=${enc(state)}&sort=${sort}&order=${desc ? "desc" : "asc"}&offset=${offset}&limit=${PAGE}`;
  const { data, error } = useLive(() => get<InstancePage>(path), [path], touchesRun(runId));

  const clear = async (mapIndexes: number[] | null) => {
    try {
      await post(`/api/runs/${enc(runId)}/clear`, { taskId: task.taskId, mapIndexes });
      onAction(mapIndexes ? `cleared ${mapIndexes.length} instance(s) of ${task.taskId}` : `cleared ${task.taskId}`);
      setPicked(new Set());
    } catch (err) {
      onAction(`clear failed: ${(err as Error).message}`);
    }
  };
  const toggle = (i: number) => setPicked((s) => {
    const next = new Set(s);
    if (!next.delete(i)) next.add(i);
    return next;
  });
  const sortBy = (column: string) => setQuery({ sort: column, order: column === sort && !desc ? "desc" : undefined, offset: undefined });

  return (
    <section class="panel task-panel" data-task={task.taskId}>
      <header>
        <h2>{taskLabel(task.taskId, task.mapped, task.mapCount)}</h2>
        <span class="badge" style={{ background: colourOf(task.state) }}>{task.state}</span>
        <button disabled={!finished} title={finished ? "re-run this task (and not its downstream)" : "a run can be cleared once it has ended"} onClick={() => void clear(null)}>
          Clear task
        </button>
        <button class="close" onClick={() => setQuery({ task: undefined, instance: undefined, state: undefined, sort: undefined, order: undefined, offset: undefined })}>×</button>
      </header>
      {task.error ? <pre class="error">{task.error}</pre> : null}
      {task.mapped ? (
        <div class="counts">
          <button class={state === "" ? "on" : ""} onClick={() => setQuery({ state: undefined, offset: undefined })}>all {task.mapCount ?? 0}</button>
          {sortedCounts(task.counts).map(([s, n]) => (
            <button key={s} class={state === s ? "on" : ""} data-filter={s} onClick={() => setQuery({ state: s, offset: undefined })}>
              <span class="dot" style={{ background: colourOf(s) }} /> {s} {n}
            </button>
          ))}
        </div>
      ) : null}
      {error ? <p class="error">{error}</p> : null}
      {data ? (
        <>
          <div class="pager">
            <span>{data.total === 0 ? "no instances" : `${data.offset + 1}–${Math.min(data.offset + PAGE, data.total)} of ${data.total}`}</span>
            <button disabled={offset === 0} onClick={() => setQuery({ offset: String(Math.max(0, offset - PAGE)) })}>‹ prev</button>
            <button disabled={offset + PAGE >= data.total} onClick={() => setQuery({ offset: String(offset + PAGE) })}>next ›</button>
            {picked.size ? <button disabled={!finished} onClick={() => void clear([...picked])}>Clear {picked.size} picked</button> : null}
            {task.mapped ? <span class="muted">{countsText(data.counts)}</span> : null}
          </div>
          <table class="instances">
            <thead>
              <tr>
                <th />
                {COLUMNS.map(([key, name]) => (
                  <th key={key} class="sortable" onClick={() => sortBy(key)}>{name}{sort === key ? (desc ? " ▼" : " ▲") : ""}</th>
                ))}
                <th>result / error</th>
              </tr>
            </thead>
            <tbody>
              {data.rows.map((i) => (
                <tr key={i.mapIndex} data-map-index={i.mapIndex} data-state={i.state} class={String(i.mapIndex) === open ? "open" : ""} onClick={() => setQuery({ instance: String(i.mapIndex) })}>
                  <td onClick={(e) => e.stopPropagation()}><input type="checkbox" checked={picked.has(i.mapIndex)} onChange={() => toggle(i.mapIndex)} aria-label={`pick ${i.mapIndex}`} /></td>
                  <td>{i.mapIndex}{i.label ? <span class="muted"> {i.label}</span> : null}</td>
                  <td><span class="dot" style={{ background: colourOf(i.state) }} /> {i.state}</td>
                  <td>{i.tries}</td>
                  <td>{time(i.startedAt)}</td>
                  <td>{duration(i.startedAt, i.endedAt)}</td>
                  <td class="worker">{i.worker ?? ""}</td>
                  <td class="result">{i.error ? <span class="error">{i.error.message}</span> : i.result ?? ""}{i.resultLength > (i.result?.length ?? 0) ? "…" : ""}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      ) : error ? null : <p class="muted">loading…</p>}
      {open !== null ? <InstanceDetail runId={runId} taskId={task.taskId} mapIndex={Number(open)} finished={finished} onAction={onAction} /> : null}
    </section>
  );
}
