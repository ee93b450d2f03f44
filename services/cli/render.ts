/** Human-readable run summaries for the terminal. */
import type { RunReport } from "../../libs/core/index.ts";

function short(value: unknown, max = 60): string {
  const text = JSON.stringify(value) ?? "null";
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** `add [6]` for a mapped task, as Airflow's graph view labels it. */
export function taskLabel(taskId: string, mapped: boolean, count: number | null): string {
  return mapped ? `${taskId} [${count ?? " "}]` : taskId;
}

/** `3 success, 1 removed` when a mapped task's instances are not all in one state. */
function stateCounts(instances: readonly { state: string }[]): string {
  const counts = new Map<string, number>();
  for (const i of instances) counts.set(i.state, (counts.get(i.state) ?? 0) + 1);
  if (counts.size < 2) return "";
  return [...counts].map(([state, n]) => `${n} ${state}`).join(", ");
}

export function renderRun(report: RunReport): string {
  const took = report.endedAt ? ` in ${report.endedAt - report.startedAt} ms` : "";
  const lines = [`run ${report.runId} of ${report.dagId}: ${report.state}${took}`];
  const rows = Object.entries(report.tasks).map(([id, t]) => {
    const label = taskLabel(id, t.mapped, t.state === "pending" ? null : t.instances.length);
    const results = t.instances.filter((i) => i.state === "success").map((i) => i.result);
    const failed = t.instances.filter((i) => i.state === "failed");
    let detail = t.mapped ? short(results) : results.length ? short(results[0]) : "";
    if (t.error) detail = t.error;
    const counts = t.mapped ? stateCounts(t.instances) : "";
    if (!t.error && failed.length) detail = counts ? `first failure: ${failed[0]!.error ?? ""}` : `failed: ${failed[0]!.error ?? ""}`;
    if (counts) detail = `${counts}  ${detail}`;
    const labelled = t.instances.filter((i) => i.label !== undefined).slice(0, 20).map((i) => `[${i.mapIndex}] ${i.label}: ${i.state}`);
    return [label, t.state, detail, labelled] as const;
  });
  const w0 = Math.max(...rows.map((r) => r[0].length));
  const w1 = Math.max(...rows.map((r) => r[1].length));
  for (const [label, state, detail, labelled] of rows) {
    lines.push(`  ${label.padEnd(w0)}  ${state.padEnd(w1)}  ${detail}`);
    for (const l of labelled) lines.push(`      ${l}`);
  }
  return lines.join("\n");
}
