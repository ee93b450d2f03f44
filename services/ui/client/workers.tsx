/** The Workers page: live workers from their heartbeats (not in the projection, so polled rather than told by the live stream). */
import { useEffect } from "preact/hooks";
import { get, useLive, type WorkerPresence } from "./api.ts";

/** Workers beat every 5 s: reading as often keeps the ages honest without a stream. */
const POLL_MS = 5000;

const ago = (ms: number) => (ms < 60_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.floor(ms / 60_000)} min`);

export function WorkersPage() {
  const { data, error, reload } = useLive(() => get<WorkerPresence[]>("/api/workers"), [], () => false);
  useEffect(() => {
    const timer = setInterval(reload, POLL_MS);
    return () => clearInterval(timer);
  }, []);
  if (error) return <p class="error">{error}</p>;
  if (!data) return <p class="muted">loading…</p>;
  return (
    <div>
      <h1>Workers</h1>
      {data.length === 0 ? (
        <p class="muted">No live workers: none wrote a heartbeat in the last 15 s.</p>
      ) : (
        <table class="workers">
          <thead><tr><th>name</th><th>host</th><th>pid</th><th>queues</th><th>concurrency</th><th>running</th><th>started</th><th>last beat</th></tr></thead>
          <tbody>
            {data.map((w) => (
              <tr key={w.key} data-worker={w.name}>
                <td>{w.name}</td>
                <td>{w.host}</td>
                <td>{w.pid}</td>
                <td>{w.queues.join(", ")}</td>
                <td>{w.concurrency}</td>
                <td>{w.running}</td>
                <td>{new Date(w.startedAt).toLocaleString()}</td>
                <td>{ago(w.ageMs)} ago</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}
