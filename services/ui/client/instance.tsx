/** One instance: its result (pretty, cut when large), error, logs per try, artifacts, its events, and the actions on it. */
import { useEffect, useMemo, useState } from "preact/hooks";
import { enc, get, post, touchesRun, useLive, type Artifact, type History, type InstanceRow, type TryLogs } from "./api.ts";
import { colourOf } from "./states.ts";
import { duration, size, time } from "./format.ts";

/** Results longer than this show their start and a link to the whole value. */
const SHOWN_CHARS = 20_000;

function pretty(json: string | null): string {
  if (json === null) return "(no result)";
  try {
    return JSON.stringify(JSON.parse(json), null, 2);
  } catch {
    return json;
  }
}

/**
 * Opens the whole result in a tab of its own, from the copy this page holds:
 * a link to the API would open without the token header, and be refused.
 */
function WholeResult({ text, length }: { text: string; length: number }) {
  const href = useMemo(() => URL.createObjectURL(new Blob([text], { type: "application/json" })), [text]);
  useEffect(() => () => URL.revokeObjectURL(href), [href]);
  return <a href={href} target="_blank">the whole result ({length.toLocaleString()} characters of JSON)</a>;
}

function Logs({ path }: { path: string }) {
  const { data, error } = useLive(() => get<TryLogs>(path), [path]);
  if (error) return <p class="error">{error}</p>;
  if (!data) return <p class="muted">loading logs…</p>;
  if (data.length === 0) return <p class="muted logs-empty">This instance wrote nothing to ctx.log.</p>;
  return (
    <div class="logs">
      {data.map((t) => (
        <div key={t.try} class="try-log" data-try={t.try}>
          <h4>try {t.try}</h4>
          <pre>
            {t.lines.map((l) => `${new Date(l.at).toISOString()} ${l.level.toUpperCase().padEnd(5)} ${l.msg}${l.fields ? ` ${JSON.stringify(l.fields)}` : ""}`).join("\n")}
          </pre>
        </div>
      ))}
    </div>
  );
}

/** The files its tries stored with ctx.artifact, each a download link. */
function Artifacts({ runId, taskId, mapIndex }: { runId: string; taskId: string; mapIndex: number }) {
  const path = `/api/runs/${enc(runId)}/artifacts?task=${enc(taskId)}&mapIndex=${mapIndex}`;
  const { data, error } = useLive(() => get<Artifact[]>(path), [path], touchesRun(runId));
  if (error) return <p class="error">{error}</p>;
  if (!data) return <p class="muted">loading artifacts…</p>;
  if (data.length === 0) return <p class="muted artifacts-empty">This instance stored no artifacts (ctx.artifact).</p>;
  return (
    <table class="artifacts">
      <thead><tr><th>try</th><th>name</th><th>type</th><th>size</th></tr></thead>
      <tbody>
        {data.map((a) => (
          <tr key={`${a.try}/${a.name}`} data-try={a.try} data-name={a.name}>
            <td>{a.try}</td>
            <td><a href={a.download} download={a.name}>{a.name}</a></td>
            <td class="muted">{a.contentType}</td>
            <td>{size(a.bytes)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function InstanceHistory({ runId, taskId, mapIndex }: { runId: string; taskId: string; mapIndex: number }) {
  const { data, error } = useLive(() => get<History>(`/api/runs/${enc(runId)}/history`), [runId], touchesRun(runId));
  if (error) return <p class="error">{error}</p>;
  if (!data) return <p class="muted">loading history…</p>;
  const mine = data.events.filter(({ event: e }) => {
    const ev = e as { taskId?: string; mapIndex?: number; mapIndexes?: number[] };
    if (ev.taskId !== undefined && ev.taskId !== taskId) return false;
    if (ev.mapIndex !== undefined) return ev.mapIndex === mapIndex;
    if (ev.mapIndexes) return ev.mapIndexes.includes(mapIndex);
    return ev.taskId === taskId || e.type.startsWith("Run") || e.type === "ClearRequested";
  });
  return (
    <table class="history">
      <tbody>
        {mine.map(({ seq, event }) => (
          <tr key={seq}><td>#{seq}</td><td>{new Date(event.at).toLocaleTimeString()}</td><td>{event.type}</td></tr>
        ))}
      </tbody>
    </table>
  );
}

export function InstanceDetail(props: { runId: string; taskId: string; mapIndex: number; finished: boolean; onAction: (msg: string) => void }) {
  const { runId, taskId, mapIndex } = props;
  const base = `/api/runs/${enc(runId)}/tasks/${enc(taskId)}/instances/${mapIndex}`;
  const { data: i, error } = useLive(() => get<InstanceRow>(base), [base], touchesRun(runId));
  const [tab, setTab] = useState<"result" | "logs" | "artifacts" | "history">("result");
  const act = async (what: string, path: string, body: unknown) => {
    try {
      await post(path, body);
      props.onAction(`${what} ${taskId}[${mapIndex}]`);
    } catch (err) {
      props.onAction(`${what} failed: ${(err as Error).message}`);
    }
  };
  if (error) return <p class="error">{error}</p>;
  if (!i) return <p class="muted">loading…</p>;
  const text = pretty(i.result);
  return (
    <section class="instance" data-map-index={mapIndex}>
      <header>
        <h3>{taskId} [{mapIndex}]{i.label ? ` ${i.label}` : ""}</h3>
        <span class="badge" style={{ background: colourOf(i.state) }}>{i.state}</span>
        <span class="muted">try {i.tries} · {time(i.startedAt)} · {duration(i.startedAt, i.endedAt)} · {i.worker ?? "no worker yet"}</span>
      </header>
      <div class="actions">
        <button disabled={!props.finished} onClick={() => void act("cleared", `/api/runs/${enc(runId)}/clear`, { taskId, mapIndexes: [mapIndex] })}>Clear</button>
        <button onClick={() => void act("marked success", `/api/runs/${enc(runId)}/mark`, { taskId, mapIndex, state: "success" })}>Mark success</button>
        <button onClick={() => void act("marked failed", `/api/runs/${enc(runId)}/mark`, { taskId, mapIndex, state: "failed" })}>Mark failed</button>
      </div>
      <nav class="tabs">
        {(["result", "logs", "artifacts", "history"] as const).map((t) => <button key={t} class={tab === t ? "on" : ""} data-tab={t} onClick={() => setTab(t)}>{t}</button>)}
      </nav>
      {tab === "result" ? (
        <>
          {i.error ? <pre class="error">{i.error.stack ?? i.error.message}</pre> : null}
          <pre class="result">{text.length > SHOWN_CHARS ? `${text.slice(0, SHOWN_CHARS)}\n…` : text}</pre>
          {text.length > SHOWN_CHARS ? <WholeResult text={text} length={i.resultLength} /> : null}
        </>
      ) : tab === "logs" ? (
        <Logs path={`${base}/logs`} />
      ) : tab === "artifacts" ? (
        <Artifacts runId={runId} taskId={taskId} mapIndex={mapIndex} />
      ) : (
        <InstanceHistory runId={runId} taskId={taskId} mapIndex={mapIndex} />
      )}
    </section>
  );
}
