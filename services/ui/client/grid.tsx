/** The grid view: runs as columns (oldest left), tasks as rows, a cell per task per run coloured by state. */
import { enc, get, touchesDag, useLive, type Grid } from "./api.ts";
import { taskLabel } from "./graph.tsx";
import { colourOf, countsText } from "./states.ts";
import { navigate } from "./route.ts";

export function GridView({ dagId }: { dagId: string }) {
  const { data, error } = useLive(() => get<Grid>(`/api/dags/${enc(dagId)}/grid`), [dagId], touchesDag(dagId));
  if (error) return <p class="error">{error}</p>;
  if (!data) return <p class="muted">loading…</p>;
  if (data.runs.length === 0) return <p class="muted">No runs of {dagId} yet.</p>;
  return (
    <div class="grid-wrap">
      <table class="grid">
        <thead>
          <tr>
            <th>task</th>
            {data.runs.map((r) => (
              <th key={r.runId} title={`${r.runId}\n${new Date(r.startedAt).toLocaleString()}`}>
                <a href={`/runs/${r.runId}`} onClick={(e) => (e.preventDefault(), navigate(`/runs/${r.runId}`))} class="run-head">
                  <span class="dot" style={{ background: colourOf(r.state) }} />
                  {new Date(r.startedAt).toLocaleTimeString()}
                </a>
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {data.dag.spec.tasks.map((t) => (
            <tr key={t.id}>
              <th class="task-name">{taskLabel(t.id, t.mapping !== null || t.group !== null, undefined)}</th>
              {data.runs.map((r) => {
                const cell = r.tasks[t.id];
                const state = cell?.state ?? "pending";
                const text = cell?.mapped ? (cell.mapCount === null ? "[ ]" : countsText(cell.counts) || "0") : "";
                return (
                  <td
                    key={r.runId}
                    class="cell"
                    data-state={state}
                    title={`${t.id} in ${r.runId}: ${state}`}
                    style={{ background: colourOf(state) }}
                    onClick={() => navigate(`/runs/${r.runId}?task=${enc(t.id)}`)}
                  >
                    {text}
                  </td>
                );
              })}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
