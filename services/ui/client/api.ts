/** The JSON API, typed for the pages, and the live stream they refetch on. */
import { useEffect, useRef, useState } from "preact/hooks";
import type { DagSpec } from "../../../libs/core/spec.ts";
import type { RunEvent } from "../../../libs/events/index.ts";
import type { ArtifactRow, DagRow, InstancePage, InstanceRow, RunRow, TaskRow } from "../../../libs/store/queries.ts";
import type { WorkerPresence } from "../../../libs/core/presence.ts";
import { authHeaders, currentToken, refused, tokenSet } from "./auth.ts";

export type { DagRow, InstancePage, InstanceRow, RunRow, TaskRow, WorkerPresence };
/** An artifact as the API lists it: its API path, and a signed link that downloads it without the token header. */
export type Artifact = ArtifactRow & { url: string; download: string };
export type DagWithRuns = DagRow & { runs: RunRow[] };
export type RunDetail = RunRow & { spec: DagSpec | undefined; tasks: TaskRow[] };
export type Grid = { dag: DagRow; runs: (RunRow & { tasks: Record<string, TaskRow> })[] };
export type History = { runId: string; events: { seq: number; event: RunEvent }[]; truncated: boolean };
export type TryLogs = { try: number; lines: { at: number; level: string; msg: string; fields?: Record<string, unknown> }[] }[];
export type Change = { seq: number; runs: { runId: string; dagId: string; state: string }[]; dags: boolean };

export class ApiError extends Error {
  override name = "ApiError";
  constructor(message: string, readonly status: number) {
    super(message);
  }
}

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const sent = currentToken();
  const res = await fetch(path, {
    method,
    headers: { ...authHeaders(sent), ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status === 401) refused(sent);
  const data = (await res.json()) as T & { error?: string };
  if (!res.ok) throw new ApiError(data.error ?? `${res.status} ${res.statusText}`, res.status);
  return data;
}

export const get = <T,>(path: string) => call<T>("GET", path);
export const post = <T,>(path: string, body: unknown = {}) => call<T>("POST", path, body);
export const enc = encodeURIComponent;

type Listener = (change: Change) => void;
const listeners = new Set<Listener>();
let streaming = false;
/** The wait before connecting again, as the server's `retry:` asks. */
const RECONNECT_MS = 2000;

function listen(fn: Listener): () => void {
  listeners.add(fn);
  if (!streaming) (streaming = true), void follow();
  return () => listeners.delete(fn);
}

/**
 * Reads the live stream with fetch, not EventSource: EventSource cannot
 * send the Authorization header, and the token in its URL would end up in
 * server, proxy and browser history logs. Like EventSource, it connects
 * again when the stream ends or fails; after a 401 it waits for a token.
 */
async function follow(): Promise<void> {
  for (;;) {
    const sent = currentToken();
    try {
      const res = await fetch("/api/live", { headers: authHeaders(sent) });
      if (res.status === 401) {
        refused(sent);
        await tokenSet();
        continue;
      }
      if (res.ok && res.body) {
        for await (const { event, data } of serverEvents(res.body)) {
          if (event !== "change") continue;
          const change = JSON.parse(data) as Change;
          for (const l of listeners) l(change);
        }
      }
    } catch {
      // the server went away or the network dropped: connect again below
    }
    await new Promise((r) => setTimeout(r, RECONNECT_MS));
  }
}

/** The messages of a text/event-stream body: blank-line separated blocks of `field: value` lines. */
async function* serverEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<{ event: string; data: string }> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let text = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    text += decoder.decode(value, { stream: true });
    const blocks = text.split("\n\n");
    text = blocks.pop()!;
    for (const block of blocks) {
      let event = "message";
      const data: string[] = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length > 0) yield { event, data: data.join("\n") };
    }
  }
}

/**
 * Data for a page: fetched once, then again when the live stream says
 * something it shows changed (`affects`), at most once per in-flight fetch.
 */
export function useLive<T>(load: () => Promise<T>, deps: unknown[], affects: (change: Change) => boolean = () => true) {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const refreshRef = useRef<() => Promise<void>>(async () => {});
  const loadRef = useRef(load);
  loadRef.current = load;
  const affectsRef = useRef(affects);
  affectsRef.current = affects;

  useEffect(() => {
    const s = { inFlight: false, again: false, alive: true };
    setData(undefined);
    setError(undefined);
    const refresh = async () => {
      if (s.inFlight) return void (s.again = true);
      s.inFlight = true;
      try {
        const value = await loadRef.current();
        if (s.alive) (setData(() => value), setError(undefined));
      } catch (err) {
        if (s.alive) setError((err as Error).message);
      } finally {
        s.inFlight = false;
        if (s.again && s.alive) (s.again = false), void refresh();
      }
    };
    refreshRef.current = refresh;
    void refresh();
    const stop = listen((change) => {
      if (affectsRef.current(change)) void refresh();
    });
    return () => {
      s.alive = false;
      stop();
    };
  }, deps);

  return { data, error, reload: () => void refreshRef.current() };
}

export const touchesRun = (runId: string) => (c: Change) => c.runs.some((r) => r.runId === runId);
export const touchesDag = (dagId: string) => (c: Change) => c.dags || c.runs.some((r) => r.dagId === dagId);
