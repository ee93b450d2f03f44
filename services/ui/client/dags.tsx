/** The DAG list: each DAG with its latest runs' states, and a trigger button with a `conf` editor checked against its params. */
import { useState } from "preact/hooks";
import { enc, get, post, useLive, type DagWithRuns } from "./api.ts";
import { colourOf } from "./states.ts";
import { navigate } from "./route.ts";
import type { DagSpec } from "../../../libs/core/spec.ts";

/** The conf a user may send: a JSON object whose keys the DAG declares (when it declares any). */
export function checkConf(spec: DagSpec, text: string): { conf?: Record<string, unknown>; error?: string } {
  let value: unknown;
  try {
    value = JSON.parse(text || "{}");
  } catch (err) {
    return { error: `not JSON: ${(err as Error).message}` };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return { error: "conf must be a JSON object, like {\"n\": 3}" };
  if (spec.params) {
    const unknown = Object.keys(value).filter((k) => !(k in spec.params!));
    if (unknown.length) return { error: `${spec.id} declares no param ${unknown.map((k) => `'${k}'`).join(", ")}; its params: ${Object.keys(spec.params).join(", ") || "none"}` };
  }
  return { conf: value as Record<string, unknown> };
}

export function TriggerDialog({ spec, onClose }: { spec: DagSpec; onClose: () => void }) {
  const [text, setText] = useState(JSON.stringify(spec.params ?? {}, null, 2));
  const [serverError, setServerError] = useState<string>();
  const checked = checkConf(spec, text);
  const trigger = async () => {
    if (!checked.conf) return;
    try {
      const { runId } = await post<{ runId: string }>(`/api/dags/${enc(spec.id)}/trigger`, { conf: checked.conf });
      onClose();
      navigate(`/runs/${runId}`);
    } catch (err) {
      setServerError((err as Error).message);
    }
  };
  return (
    <div class="dialog" role="dialog" aria-label={`trigger ${spec.id}`}>
      <h3>Trigger {spec.id}</h3>
      <label>conf (JSON){spec.params ? ` — params: ${Object.keys(spec.params).join(", ")}` : ""}</label>
      <textarea rows={8} value={text} onInput={(e) => (setText((e.target as HTMLTextAreaElement).value), setServerError(undefined))} spellcheck={false} />
      {checked.error ? <p class="error conf-error">{checked.error}</p> : null}
      {serverError ? <p class="error conf-error">{serverError}</p> : null}
      <div class="actions">
        <button class="primary" disabled={!checked.conf} onClick={() => void trigger()}>Trigger</button>
        <button onClick={onClose}>Cancel</button>
      </div>
    </div>
  );
}

export function DagsPage() {
  const { data, error } = useLive(() => get<DagWithRuns[]>("/api/dags"), []);
  const [triggering, setTriggering] = useState<DagSpec>();
  if (error) return <p class="error">{error}</p>;
  if (!data) return <p class="muted">loading…</p>;
  return (
    <div>
      <h1>DAGs</h1>
      {data.length === 0 ? <p class="muted">No DAG is registered yet: start a worker with a --dags folder.</p> : null}
      <table class="dags">
        <thead><tr><th>DAG</th><th>tasks</th><th>latest runs (newest left)</th><th /></tr></thead>
        <tbody>
          {data.map((d) => (
            <tr key={d.dagId} data-dag={d.dagId}>
              <td>
                <a href={`/dags/${d.dagId}`} onClick={(e) => (e.preventDefault(), navigate(`/dags/${d.dagId}`))}>{d.dagId}</a>
                {d.spec.description ? <div class="muted">{d.spec.description}</div> : null}
                {d.spec.schedule || d.paused ? (
                  <div class="muted schedule" data-paused={d.paused ? "yes" : "no"}>
                    {[d.spec.schedule ? `schedule ${d.spec.schedule} (UTC)` : "", d.paused ? "paused" : ""].filter(Boolean).join(" · ")}
                  </div>
                ) : null}
              </td>
              <td>{d.spec.tasks.length}</td>
              <td class="run-dots">
                {d.runs.map((r) => (
                  <a key={r.runId} href={`/runs/${r.runId}`} title={`${r.runId}: ${r.state}`} onClick={(e) => (e.preventDefault(), navigate(`/runs/${r.runId}`))}>
                    <span class="dot big" data-state={r.state} style={{ background: colourOf(r.state) }} />
                  </a>
                ))}
              </td>
              <td><button class="primary" onClick={() => setTriggering(d.spec)}>Trigger ▶</button></td>
            </tr>
          ))}
        </tbody>
      </table>
      {triggering ? <TriggerDialog spec={triggering} onClose={() => setTriggering(undefined)} /> : null}
    </div>
  );
}
