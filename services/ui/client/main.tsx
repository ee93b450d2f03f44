/** The web UI: DAGs, a DAG's graph and grid, a run's graph, tasks, instances and history. */
import { render } from "preact";
import { useMemo, useState } from "preact/hooks";
import { enc, get, post, touchesDag, touchesRun, useLive, type DagRow, type RunDetail } from "./api.ts";
import { hasToken, signOut, takeTokenFromAddress, useAsking } from "./auth.ts";
import { DagsPage, TriggerDialog } from "./dags.tsx";
import { duration, time } from "./format.ts";
import { Graph, type TaskView } from "./graph.tsx";
import { GridView } from "./grid.tsx";
import { HistoryView } from "./history.tsx";
import { navigate, setQuery, useLocation } from "./route.ts";
import { colourOf } from "./states.ts";
import { TaskPanel } from "./task-panel.tsx";
import { TokenScreen } from "./token.tsx";
import { WorkersPage } from "./workers.tsx";
import "./style.css";

const FINISHED = new Set(["success", "failed", "cancelled"]);

function Link({ to, children }: { to: string; children: preact.ComponentChildren }) {
  return <a href={to} onClick={(e) => (e.preventDefault(), navigate(to))}>{children}</a>;
}

function Tabs({ tabs, current }: { tabs: string[]; current: string }) {
  return (
    <nav class="tabs">
      {tabs.map((t) => <button key={t} class={t === current ? "on" : ""} data-tab={t} onClick={() => setQuery({ view: t })}>{t}</button>)}
    </nav>
  );
}

function DagPage({ dagId }: { dagId: string }) {
  const view = useLocation().searchParams.get("view") ?? "graph";
  const { data, error } = useLive(() => get<DagRow>(`/api/dags/${enc(dagId)}`), [dagId], touchesDag(dagId));
  const [triggering, setTriggering] = useState(false);
  if (error) return <p class="error">{error}</p>;
  if (!data) return <p class="muted">loading…</p>;
  return (
    <div>
      <h1>{dagId} <button class="primary" onClick={() => setTriggering(true)}>Trigger ▶</button></h1>
      {data.spec.description ? <p class="muted">{data.spec.description}</p> : null}
      <Tabs tabs={["graph", "grid"]} current={view} />
      {view === "grid" ? <GridView dagId={dagId} /> : <Graph spec={data.spec} />}
      {triggering ? <TriggerDialog spec={data.spec} onClose={() => setTriggering(false)} /> : null}
    </div>
  );
}

function RunPage({ runId }: { runId: string }) {
  const loc = useLocation();
  const view = loc.searchParams.get("view") ?? "graph";
  const selected = loc.searchParams.get("task") ?? undefined;
  const [notice, setNotice] = useState<string>();
  const { data: run, error } = useLive(() => get<RunDetail>(`/api/runs/${enc(runId)}`), [runId], touchesRun(runId));
  const views = useMemo(() => new Map<string, TaskView>((run?.tasks ?? []).map((t) => [t.taskId, t])), [run]);
  if (error) return <p class="error">{error}</p>;
  if (!run) return <p class="muted">loading…</p>;
  const finished = FINISHED.has(run.state);
  const task = run.tasks.find((t) => t.taskId === selected);
  const cancel = async () => {
    try {
      await post(`/api/runs/${enc(runId)}/cancel`);
      setNotice("cancel requested");
    } catch (err) {
      setNotice(`cancel failed: ${(err as Error).message}`);
    }
  };
  return (
    <div>
      <h1>
        <Link to={`/dags/${run.dagId}`}>{run.dagId}</Link> <span class="muted">/</span> <span class="run-id">{run.runId}</span>{" "}
        <span class="badge run-state" data-state={run.state} style={{ background: colourOf(run.state) }}>{run.state}</span>
      </h1>
      <p class="muted">
        started {time(run.startedAt)}{run.endedAt ? ` · took ${duration(run.startedAt, run.endedAt)}` : ""} · conf {JSON.stringify(run.conf)}{" "}
        {finished ? null : <button onClick={() => void cancel()}>Cancel run</button>}
      </p>
      {notice ? <p class="notice" role="status">{notice}</p> : null}
      <Tabs tabs={["graph", "history"]} current={view} />
      {view === "history" ? (
        <HistoryView runId={runId} />
      ) : (
        <div class="run-body">
          {run.spec ? <Graph spec={run.spec} views={views} selected={selected} onSelect={(id) => setQuery({ task: id, instance: undefined, state: undefined, offset: undefined })} /> : <p class="error">The graph of this run's DAG version is not known.</p>}
          {task ? <TaskPanel runId={runId} task={task} finished={finished} onAction={setNotice} /> : <p class="muted hint">Click a task to see its instances.</p>}
        </div>
      )}
    </div>
  );
}

function RunsPage() {
  const { data, error } = useLive(() => get<RunDetail[]>("/api/runs?limit=100"), []);
  if (error) return <p class="error">{error}</p>;
  if (!data) return <p class="muted">loading…</p>;
  return (
    <div>
      <h1>Runs</h1>
      <table class="runs">
        <thead><tr><th>run</th><th>DAG</th><th>state</th><th>started</th><th>took</th></tr></thead>
        <tbody>
          {data.map((r) => (
            <tr key={r.runId}>
              <td><Link to={`/runs/${r.runId}`}>{r.runId}</Link></td>
              <td><Link to={`/dags/${r.dagId}`}>{r.dagId}</Link></td>
              <td><span class="dot" style={{ background: colourOf(r.state) }} /> {r.state}</td>
              <td>{new Date(r.startedAt).toLocaleString()}</td>
              <td>{duration(r.startedAt, r.endedAt)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function App() {
  const { pathname } = useLocation();
  const asking = useAsking();
  const [, section, id] = pathname.split("/").map(decodeURIComponent);
  return (
    <>
      <header class="top">
        <Link to="/">mapflow</Link>
        <Link to="/">DAGs</Link>
        <Link to="/runs">Runs</Link>
        <Link to="/workers">Workers</Link>
        {hasToken() ? <button class="sign-out" onClick={signOut}>Sign out</button> : null}
      </header>
      <main>
        {/* The pages unmount while the token is asked for, and load afresh once it is given. */}
        {asking ? <TokenScreen why={asking} /> : section === "dags" && id ? <DagPage dagId={id} /> : section === "runs" && id ? <RunPage runId={id} /> : section === "runs" ? <RunsPage /> : section === "workers" ? <WorkersPage /> : <DagsPage />}
      </main>
    </>
  );
}

takeTokenFromAddress();
render(<App />, document.getElementById("app")!);
