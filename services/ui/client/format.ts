/** How times and durations read on every screen. */
export const time = (ms: number | null | undefined) => (ms ? new Date(ms).toLocaleTimeString() : "");
export const duration = (from: number | null | undefined, to: number | null | undefined) => (from && to ? `${((to - from) / 1000).toFixed(3)} s` : "");
export const size = (bytes: number) =>
  bytes < 1024 ? `${bytes} B` : bytes < 1024 * 1024 ? `${(bytes / 1024).toFixed(1)} KiB` : `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
