/** Airflow's colours for task and instance states, so its users read the screens at a glance. */
export const STATE_COLOURS: Record<string, string> = {
  success: "#2e9e44",
  failed: "#d9363e",
  running: "#3fbf3f",
  queued: "#8c8c8c",
  scheduled: "#d2b48c",
  up_for_retry: "#e6b800",
  upstream_failed: "#f08a24",
  skipped: "#e84fa3",
  removed: "#c8c8c8",
  pending: "#ffffff",
  cancelled: "#7a5cc2",
};

/** The order counts are shown in: finished first, then what is still moving. */
export const STATE_ORDER = ["success", "failed", "upstream_failed", "skipped", "removed", "running", "up_for_retry", "queued", "scheduled", "pending"];

export const STATE_MARKS: Record<string, string> = {
  success: "✓", failed: "✗", upstream_failed: "⇡✗", skipped: "↷", removed: "−", running: "▶", up_for_retry: "↻", queued: "…", scheduled: "◷",
};

export function colourOf(state: string): string {
  return STATE_COLOURS[state] ?? "#eeeeee";
}

/** `998 ✓ 2 ✗`: the counts of a mapped task's instances by state. */
export function countsText(counts: Record<string, number>): string {
  return STATE_ORDER.filter((s) => counts[s]).map((s) => `${counts[s]} ${STATE_MARKS[s] ?? s}`).join(" ");
}

export function sortedCounts(counts: Record<string, number>): [string, number][] {
  const known = STATE_ORDER.filter((s) => counts[s]).map((s) => [s, counts[s]!] as [string, number]);
  const other = Object.entries(counts).filter(([s, n]) => n && !STATE_ORDER.includes(s));
  return [...known, ...other];
}
