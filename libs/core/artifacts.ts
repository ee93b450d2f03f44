/**
 * What a task may store with `ctx.artifact`: the checks, kept pure so the
 * worker, the CLI and the tests agree on them. Each answers with the
 * message a task's author needs, or undefined when all is well.
 */
import { isArtifactName, MAX_ARTIFACT_NAME_LENGTH } from "../names/index.ts";
import type { RunState } from "./state.ts";

/** A try may store at most this many artifacts: each is a line in its outcome event. */
export const MAX_ARTIFACTS_PER_TRY = 1000;

/** type/subtype with optional `; key=value` parameters; never a line break (it becomes a response header). */
const TOKEN = "[A-Za-z0-9!#$&^_.+-]+";
const CONTENT_TYPE = new RegExp(`^${TOKEN}/${TOKEN}(\\s*;\\s*${TOKEN}=(${TOKEN}|"[^"\\\\\\r\\n]*"))*$`);
const MAX_CONTENT_TYPE_LENGTH = 200;

export function defaultContentType(data: Uint8Array | string): string {
  return typeof data === "string" ? "text/plain; charset=utf-8" : "application/octet-stream";
}

export function artifactNameProblem(name: unknown): string | undefined {
  if (typeof name !== "string") return `an artifact name must be a string, got ${name === null ? "null" : typeof name}`;
  if (isArtifactName(name)) return undefined;
  if (name.length > MAX_ARTIFACT_NAME_LENGTH) return `artifact name '${name.slice(0, 40)}…' is ${name.length} characters; keep it to ${MAX_ARTIFACT_NAME_LENGTH}`;
  return `artifact name '${name}' is not a plain file name: use letters, digits, '.', '_' and '-' (not first a '.'), ` +
    "with no '/', '\\', spaces or wildcards; e.g. 'report.html' or 'model-3.bin'";
}

export function contentTypeProblem(contentType: unknown): string | undefined {
  if (typeof contentType !== "string") return `a content type must be a string such as 'text/csv', got ${contentType === null ? "null" : typeof contentType}`;
  if (contentType.length <= MAX_CONTENT_TYPE_LENGTH && CONTENT_TYPE.test(contentType)) return undefined;
  return `content type '${contentType.slice(0, 80)}' is not a media type; give one such as 'text/csv', 'image/png' or 'application/json; charset=utf-8'`;
}

export function artifactSizeProblem(name: string, bytes: number, limit: number): string | undefined {
  if (bytes <= limit) return undefined;
  return `artifact '${name}' is ${bytes} bytes, over the ${limit}-byte limit for one artifact (MAPFLOW_MAX_VALUE_BYTES); split it, or write it to storage of its own and record its URL`;
}

/** One artifact of a run, as `mapflow artifacts --json` lists it (and the UI API, from the read model). */
export type ArtifactListing = {
  readonly taskId: string;
  readonly mapIndex: number;
  readonly try: number;
  readonly name: string;
  readonly contentType: string;
  readonly bytes: number;
  readonly object: string;
};

/** A folded run's artifacts (of one task, or one instance), ordered by task id, map index, try and name, as the read model orders them. */
export function runArtifacts(state: RunState, filter: { taskId?: string; mapIndex?: number } = {}): ArtifactListing[] {
  const out: ArtifactListing[] = [];
  for (const task of Object.values(state.tasks)) {
    if (filter.taskId !== undefined && task.id !== filter.taskId) continue;
    // A task cleared whole and not expanded again holds its instances' artifacts in `previous`.
    for (const instance of task.instances ?? task.previous ?? []) {
      if (filter.mapIndex !== undefined && instance.mapIndex !== filter.mapIndex) continue;
      for (const a of instance.artifacts ?? []) {
        out.push({ taskId: task.id, mapIndex: instance.mapIndex, try: a.try, name: a.name, contentType: a.contentType, bytes: a.bytes, object: a.object });
      }
    }
  }
  const order = (a: string | number, b: string | number) => (a < b ? -1 : a > b ? 1 : 0);
  return out.sort((a, b) => order(a.taskId, b.taskId) || a.mapIndex - b.mapIndex || a.try - b.try || order(a.name, b.name));
}
