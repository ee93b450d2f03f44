/**
 * The JSON API behind the web UI, usable by any tool (documented in the
 * README). Reads come from the SQLite projection; a run's history and an
 * instance's logs come from NATS; actions append the same events as the
 * CLI, checked the same way.
 */
import type { ServerResponse } from "node:http";
import { Readable } from "node:stream";
import type { ReadableStream } from "node:stream/web";
import { pipeline } from "node:stream/promises";
import { isRunEvent, type RunEvent } from "../../libs/events/index.ts";
import { contentTypeProblem } from "../../libs/core/artifacts.ts";
import { artifactStore, followEvents, lazily, logBadEvent, readArtifact, readTryLogs, readWorkers, type Nats } from "../../libs/nats/index.ts";
import { INSTANCE_SORTS, type ArtifactRow, type InstanceSort, type ReadQueries, type TaskRow } from "../../libs/store/queries.ts";
import { isArtifactName, isTaskId, isToken, subjects } from "../../libs/names/index.ts";
import { BadInputError } from "../../libs/errors.ts";
import type { Logger } from "../../libs/log/index.ts";
import { cancelRun, clearRun, markInstance } from "../cli/operate.ts";
import { registeredDag, requestRun } from "../cli/runs.ts";
import { setPaused } from "../cli/pause.ts";
import { intParam, NotFoundError, readJson, Router, type Request } from "./http.ts";

export type ApiDeps = {
  nats: Nats;
  queries: ReadQueries;
  log: Logger;
  /** A path made into a link that works without the token header for a while (downloads). */
  sign: (path: string) => string;
};

/** How many past runs the DAG list and the grid show by default. */
const RECENT_RUNS = 25;
/** A history longer than this is cut (the UI says so): a run of a million instances has millions of events. */
const MAX_HISTORY = 200_000;

function runId(request: Request): string {
  const id = request.params["runId"]!;
  if (!isToken(id)) throw new BadInputError(`'${id}' is not a valid run id`);
  return id;
}

function taskId(request: Request): string {
  const id = request.params["taskId"]!;
  if (!isTaskId(id)) throw new BadInputError(`'${id}' is not a valid task id`);
  return id;
}

function mapIndex(text: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < -1) throw new BadInputError(`map index must be a whole number from -1, got '${text}'`);
  return value;
}

/** A run's events in log order, read to the end of what the log holds now. */
async function runHistory(nats: Nats, id: string, log: Logger): Promise<{ events: { seq: number; event: RunEvent }[]; truncated: boolean }> {
  const follow = await followEvents(nats.js, subjects.run(id), 1, logBadEvent(log));
  const events: { seq: number; event: RunEvent }[] = [];
  try {
    for await (const { seq, event, caughtUp } of follow) {
      if (event && isRunEvent(event)) events.push({ seq, event });
      if (caughtUp) break;
      if (events.length >= MAX_HISTORY) return { events, truncated: true };
    }
  } finally {
    await follow.stop();
  }
  return { events, truncated: false };
}

/** Where an artifact is downloaded from (the API lists it with each artifact). */
export function artifactUrl(runId: string, a: ArtifactRow): string {
  return `/api/runs/${runId}/artifacts/${encodeURIComponent(a.taskId)}/${a.mapIndex}/${a.try}/${encodeURIComponent(a.name)}`;
}

/**
 * Streams an artifact as a download: its recorded content type, never
 * sniffed, and always as an attachment, so a task's HTML cannot run as a
 * page of this UI. A transfer cut short ends the connection (content-length
 * tells the client it is incomplete).
 */
async function sendArtifact(res: ServerResponse, store: () => ReturnType<typeof artifactStore>, a: ArtifactRow): Promise<void> {
  const result = await readArtifact(await store(), a.object);
  const name = isArtifactName(a.name) ? a.name : "artifact";
  res.writeHead(200, {
    "content-type": contentTypeProblem(a.contentType) ? "application/octet-stream" : a.contentType,
    "content-length": String(a.bytes),
    "content-disposition": `attachment; filename="${name}"`,
    "x-content-type-options": "nosniff",
    "cache-control": "no-store",
  });
  await pipeline(Readable.fromWeb(result.data as ReadableStream<Uint8Array>), res);
  const failed = await result.error; // the digest is checked as the last chunk arrives
  if (failed) throw failed;
}

export function apiRoutes(router: Router, { nats, queries, log, sign }: ApiDeps): Router {
  const artifacts = lazily(() => artifactStore(nats));
  const runOr404 = (id: string) => {
    const run = queries.run(id);
    if (!run) throw new NotFoundError(`run '${id}' is not in the read model (yet); check the id, or wait for the projector to catch up`);
    return run;
  };
  /** The instance a path names, its ids checked, and its row; a 404 when the read model has no such instance. */
  const instanceOr404 = (request: Request) => {
    const where = { run: runId(request), task: taskId(request), index: mapIndex(request.params["mapIndex"]!) };
    const row = queries.instance(where.run, where.task, where.index);
    if (!row) throw new NotFoundError(`run ${where.run} has no instance ${where.index} of task '${where.task}'`);
    return { where, row };
  };
  const tasksInOrder = (id: string, dagId: string, version: string): { spec: ReturnType<ReadQueries["specOf"]>; tasks: TaskRow[] } => {
    const spec = queries.specOf(dagId, version);
    const rows = new Map(queries.tasks(id).map((t) => [t.taskId, t]));
    const order = spec?.tasks.map((t) => t.id) ?? [...rows.keys()];
    return { spec, tasks: order.flatMap((t) => rows.get(t) ?? []) };
  };

  return router
    .on("GET", "/api/dags", () =>
      queries.dags().map((d) => ({ ...d, runs: queries.runs({ dagId: d.dagId, limit: RECENT_RUNS }) })))
    .on("GET", "/api/dags/:dagId", ({ params }) => {
      const dag = queries.dag(params["dagId"]!);
      if (!dag) throw new NotFoundError(`DAG '${params["dagId"]}' is not registered; start a worker whose --dags folder holds it`);
      return dag;
    })
    .on("GET", "/api/runs", ({ url }) =>
      queries.runs({ dagId: url.searchParams.get("dag") ?? undefined, state: url.searchParams.get("state") ?? undefined, limit: intParam(url, "limit", RECENT_RUNS, 1) }))
    .on("GET", "/api/dags/:dagId/grid", ({ params, url }) => {
      const dag = queries.dag(params["dagId"]!);
      if (!dag) throw new NotFoundError(`DAG '${params["dagId"]}' is not registered`);
      // Oldest first, as Airflow's grid reads left to right.
      const runs = queries.runs({ dagId: dag.dagId, limit: intParam(url, "limit", RECENT_RUNS, 1) }).reverse();
      const tasks = queries.tasksOfRuns(runs.map((r) => r.runId));
      return { dag, runs: runs.map((r) => ({ ...r, tasks: Object.fromEntries((tasks.get(r.runId) ?? []).map((t) => [t.taskId, t])) })) };
    })
    .on("GET", "/api/runs/:runId", (request) => {
      const run = runOr404(runId(request));
      return { ...run, ...tasksInOrder(run.runId, run.dagId, run.dagVersion) };
    })
    .on("GET", "/api/runs/:runId/history", async (request) => {
      const run = runOr404(runId(request));
      return { runId: run.runId, ...(await runHistory(nats, run.runId, log)) };
    })
    .on("GET", "/api/runs/:runId/tasks/:taskId/instances", (request) => {
      const id = runId(request);
      runOr404(id);
      const url = request.url;
      const sort = url.searchParams.get("sort") ?? "map_index";
      if (!INSTANCE_SORTS.includes(sort as InstanceSort)) throw new BadInputError(`sort must be one of ${INSTANCE_SORTS.join(", ")}, got '${sort}'`);
      return queries.instances(id, taskId(request), {
        state: url.searchParams.get("state") || undefined,
        sort: sort as InstanceSort,
        desc: url.searchParams.get("order") === "desc",
        offset: intParam(url, "offset", 0),
        limit: intParam(url, "limit", 100, 1),
      });
    })
    .on("GET", "/api/runs/:runId/tasks/:taskId/instances/:mapIndex", (request) => instanceOr404(request).row)
    .on("GET", "/api/runs/:runId/tasks/:taskId/instances/:mapIndex/logs", async (request) => {
      // An unknown instance is a 404, not an empty list that reads as "it never logged".
      const { where } = instanceOr404(request);
      return readTryLogs(nats, where.run, where.task, where.index);
    })
    .on("GET", "/api/runs/:runId/artifacts", (request) => {
      const id = runId(request);
      runOr404(id);
      const task = request.url.searchParams.get("task") || undefined;
      if (task !== undefined && !isTaskId(task)) throw new BadInputError(`'${task}' is not a valid task id`);
      const index = request.url.searchParams.get("mapIndex");
      const rows = queries.artifacts(id, { taskId: task, mapIndex: index === null || index === "" ? undefined : mapIndex(index) });
      return rows.map((a) => {
        const url = artifactUrl(id, a);
        return { ...a, url, download: sign(url) };
      });
    })
    .on("GET", "/api/runs/:runId/artifacts/:taskId/:mapIndex/:try/:name", async (request, res) => {
      const tryNumber = Number(request.params["try"]);
      if (!Number.isInteger(tryNumber) || tryNumber < 1) throw new BadInputError(`try must be a whole number from 1, got '${request.params["try"]}'`);
      const where = { run: runId(request), task: taskId(request), index: mapIndex(request.params["mapIndex"]!), name: request.params["name"]! };
      const found = queries.artifact(where.run, where.task, where.index, tryNumber, where.name);
      if (!found) throw new NotFoundError(`run ${where.run} has no artifact '${where.name}' of ${where.task}[${where.index}] try ${tryNumber}; GET /api/runs/${where.run}/artifacts lists them`);
      await sendArtifact(res, artifacts, found);
    })
    .on("GET", "/api/workers", () => readWorkers(nats))
    .on("POST", "/api/dags/:dagId/trigger", async ({ req, params }) => {
      const body = await readJson(req);
      const conf = body["conf"] ?? {};
      if (typeof conf !== "object" || conf === null || Array.isArray(conf)) throw new BadInputError("conf must be a JSON object");
      const dag = await registeredDag(nats, params["dagId"]!);
      const id = await requestRun(nats, { dagId: dag.dagId, version: dag.version, spec: dag.spec, conf: conf as Record<string, unknown> });
      log.info({ runId: id, dagId: dag.dagId }, "run triggered from the UI");
      return { runId: id };
    })
    .on("POST", "/api/dags/:dagId/pause", async ({ req, params }) => {
      const paused = (await readJson(req))["paused"];
      if (typeof paused !== "boolean") throw new BadInputError('send { "paused": true } to pause the DAG\'s schedule, or { "paused": false } to unpause it');
      return setPaused(nats, params["dagId"]!, paused);
    })
    .on("POST", "/api/runs/:runId/cancel", async (request) => ({ seq: await cancelRun(nats, runId(request)) }))
    .on("POST", "/api/runs/:runId/clear", async (request) => {
      const body = await readJson(request.req);
      const task = body["taskId"];
      if (typeof task !== "string") throw new BadInputError("taskId (a string) is required");
      const indexes = body["mapIndexes"];
      if (indexes !== undefined && indexes !== null && (!Array.isArray(indexes) || !indexes.every((i) => Number.isInteger(i)))) {
        throw new BadInputError("mapIndexes must be a list of whole numbers, or left out to clear the whole task");
      }
      if (Array.isArray(indexes) && indexes.length === 0) throw new BadInputError("mapIndexes is empty: name the instances to clear, or leave it out to clear the whole task");
      return { seq: await clearRun(nats, runId(request), task, (indexes as number[] | undefined) ?? null, body["downstream"] === true) };
    })
    .on("POST", "/api/runs/:runId/mark", async (request) => {
      const body = await readJson(request.req);
      const task = body["taskId"];
      if (typeof task !== "string" || !Number.isInteger(body["mapIndex"]) || typeof body["state"] !== "string") {
        throw new BadInputError("taskId (a string), mapIndex (a whole number) and state (\"success\" or \"failed\") are required");
      }
      return { seq: await markInstance(nats, runId(request), task, body["mapIndex"] as number, String(body["state"])) };
    });
}
