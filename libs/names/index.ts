/**
 * Every stream, subject, consumer and header name mapflow uses. This is the
 * only module that spells one: permissions (nats.conf), services and tests
 * all build names here.
 *
 * Subjects are shaped so that NATS permissions can tell writers apart:
 *   mf.evt.dag.<dagId>                  DagRegistered        (worker / CLI)
 *   mf.evt.dag.<dagId>.paused           DagPaused            (operators: CLI / API)
 *   mf.evt.admin                        RunsPurged           (admin: db clean)
 *   mf.evt.run.<runId>.req              RunRequested         (CLI / API)
 *   mf.evt.run.<runId>.coord            decisions            (coordinator only)
 *   mf.evt.run.<runId>.inst.<taskId>.<i>   an instance's events (workers)
 *   mf.evt.run.<runId>.inst.<taskId>.c<k>  outcomes of a wave, in chunk k of map indexes (workers)
 *   mf.work.<queue>.<runId>.<taskId>    work items           (coordinator → workers)
 *   mf.log.<runId>.<taskId>.<mapIndex>.<try>
 *                                       a try's ctx.log lines (workers)
 *   mf.ctl.run.<runId>.stop             stop a run's tries   (core NATS, not stored)
 *
 * A task id's dots become `~` in a subject (see taskToken), so it stays one token.
 */

export const STREAMS = {
  events: "MF_EVENTS",
  work: "MF_WORK",
  /** JetStream's MAX_DELIVERIES advisories for work, kept until a coordinator has recorded each one. */
  deadLetters: "MF_DEAD_LETTERS",
  /** What tasks wrote through `ctx.log`, one subject per try. */
  logs: "MF_LOGS",
} as const;

export const HEADERS = {
  eventType: "Mf-Event-Type",
  schemaVersion: "Mf-Schema",
  /** On a work message whose item is too large to travel inline: the object holding it. */
  workObject: "Mf-Work-Object",
} as const;

export const DEFAULT_QUEUE = "default";

/** Ids become subject tokens, so they must never contain `.`, `*`, `>` or spaces. */
const TOKEN = /^[A-Za-z0-9_-]+$/;
/** Task ids may hold one `.` per task-group level; each part is a token. */
const TASK_ID = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;
/** Airflow's limit on an id; a subject holds a run id and a task id, and NATS limits a subject's length. */
export const MAX_ID_LENGTH = 250;
/** A scheduled run's id is its DAG's id and 29 characters more (runIds.scheduled), and must stay an id. */
export const MAX_DAG_ID_LENGTH = 200;

export function isToken(value: string): boolean {
  return value.length <= MAX_ID_LENGTH && TOKEN.test(value);
}

export function isTaskId(value: string): boolean {
  return value.length <= MAX_ID_LENGTH && TASK_ID.test(value);
}

/** Task ids may contain dots (task groups); in a subject they are one token. */
function taskToken(taskId: string): string {
  return taskId.replaceAll(".", "~");
}

export const subjects = {
  allEvents: "mf.evt.>",
  dagRegistered: (dagId: string) => `mf.evt.dag.${dagId}`,
  /** Its own subject, so a DAG's pause state is one last-by-subject lookup and its registrations stay apart. */
  dagPaused: (dagId: string) => `mf.evt.dag.${dagId}.paused`,
  /** Every DAG's registrations and pauses; read last-per-subject, it is each DAG's current registration and state. */
  allDags: "mf.evt.dag.>",
  /** Administration of the log itself (RunsPurged): outside every run's subjects, so it outlives what it purges. */
  admin: "mf.evt.admin",
  allRuns: "mf.evt.run.>",
  run: (runId: string) => `mf.evt.run.${runId}.>`,
  /** Operators' requests: RunRequested, ClearRequested, InstanceMarked, RunCancelRequested. */
  requests: (runId: string) => `mf.evt.run.${runId}.req`,
  /** Every run's requests: where each run begins (its RunRequested), whatever its DAG. */
  allRequests: "mf.evt.run.*.req",
  coordinator: (runId: string) => `mf.evt.run.${runId}.coord`,
  /** One subject per instance, so "has this instance an outcome?" is one last-by-subject lookup. */
  instanceOutcome: (runId: string, taskId: string, mapIndex: number) => `mf.evt.run.${runId}.inst.${taskToken(taskId)}.${mapIndex}`,
  /** InstancesFinished of one chunk of a task's map indexes (see OUTCOME_CHUNK): a redelivered try's outcome is among its few messages. */
  chunkOutcomes: (runId: string, taskId: string, chunk: number) => `mf.evt.run.${runId}.inst.${taskToken(taskId)}.c${chunk}`,
  allLogs: "mf.log.>",
  /** One try's log lines, in the order its task wrote them. */
  tryLog: (runId: string, taskId: string, mapIndex: number, tryNumber: number) => `mf.log.${runId}.${taskToken(taskId)}.${mapIndex}.${tryNumber}`,
  /** The log lines of every try of one instance. */
  /** Every log line of one run (to purge a cleaned run's). */
  runLogs: (runId: string) => `mf.log.${runId}.>`,
  instanceLogs: (runId: string, taskId: string, mapIndex: number) => `mf.log.${runId}.${taskToken(taskId)}.${mapIndex}.*`,
  /** The try number of a `tryLog` subject. */
  tryOfLog: (subject: string) => Number(subject.split(".")[5]),
  allWork: "mf.work.>",
  /** Every work message of one run, whatever its queue and task (to drop a stopped run's work). */
  runWork: (runId: string) => `mf.work.*.${runId}.*`,
  /** Core NATS (not stored): workers stop a run's running tries when told here. */
  runStop: (runId: string) => `mf.ctl.run.${runId}.stop`,
  allRunStops: "mf.ctl.run.*.stop",
  runOfStop: (subject: string) => subject.split(".")[3],
  /** JetStream's advisory when a work message used up its deliveries (MaxDeliver) without an ack. */
  workMaxDeliveries: `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${STREAMS.work}.*`,
  /**
   * JetStream's advisories when the work stream or one of its consumers gets a new leader (a cluster
   * node went away): the new leader may not have the last deliveries and acks, and hands that work out again.
   */
  workLeaderElected: [`$JS.EVENT.ADVISORY.STREAM.LEADER_ELECTED.${STREAMS.work}`, `$JS.EVENT.ADVISORY.CONSUMER.LEADER_ELECTED.${STREAMS.work}.*`],
  queueWork: (queue: string) => `mf.work.${queue}.>`,
  work: (queue: string, runId: string, taskId: string) => `mf.work.${queue}.${runId}.${taskToken(taskId)}`,
  /** The run id of a coordinator subject, or undefined for any other subject. */
  runOfCoordinator: (subject: string) => {
    const parts = subject.split(".");
    return parts.length === 5 && subject.startsWith("mf.evt.run.") && parts[4] === "coord" ? parts[3] : undefined;
  },
} as const;

/** Key-value buckets (JetStream KV). */
export const BUCKETS = {
  /** Leadership leases; a key expires unless its holder renews it. */
  leases: "mf-leases",
  /** The coordinator's snapshot: the log position and the runs active there. */
  coordinator: "mf-coordinator",
  /** `ctx.kv`: values tasks share, under a run's or a DAG's scope (see kvKeys). */
  taskKv: "mf-kv",
  /** Live workers' heartbeats; a key expires unless its worker writes it again. */
  workers: "mf-workers",
} as const;

/**
 * `ctx.kv` keys: the scope comes first, so runs never collide by default and
 * one scope is one wildcard (to purge a cleaned run's keys).
 */
export const kvKeys = {
  run: (runId: string, key: string) => `run.${runId}.${key}`,
  dag: (dagId: string, key: string) => `dag.${dagId}.${key}`,
  ofRun: (runId: string) => `run.${runId}.>`,
} as const;

/** A `ctx.kv` key: tokens of letters, digits, `_`, `-`, `=` or `/`, joined by single dots (a KV key without wildcards). */
const KV_KEY = /^[A-Za-z0-9_=/-]+(\.[A-Za-z0-9_=/-]+)*$/;
export const MAX_KV_KEY_LENGTH = 200;

export function isKvKey(value: string): boolean {
  return value.length <= MAX_KV_KEY_LENGTH && KV_KEY.test(value);
}

/** A heartbeat's key: the worker's name made a KV key, and a suffix unique to the process's worker (names may repeat). */
export function workerKey(name: string, unique: string): string {
  return `${name.replace(/[^A-Za-z0-9_-]/g, "_")}_${unique}`;
}

/** The object store bucket for files tasks write with `ctx.artifact`. */
export const ARTIFACTS_BUCKET = "mf-artifacts";
/**
 * An artifact name is a file name: letters, digits, `.`, `_` and `-`, not
 * starting with a dot — no path separators, wildcards or spaces, so it is
 * safe as a file name, a URL segment and a download's file name.
 */
const ARTIFACT_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;
export const MAX_ARTIFACT_NAME_LENGTH = 200;

export function isArtifactName(value: string): boolean {
  return value.length <= MAX_ARTIFACT_NAME_LENGTH && ARTIFACT_NAME.test(value);
}

export const artifactObjects = {
  /**
   * One object per try and name, so a retry's artifact never overwrites an
   * earlier try's; `unique` tells apart two copies of one try (a paused
   * worker's and its replacement's), as for stored results: the log records one.
   */
  object: (runId: string, taskId: string, mapIndex: number, tryNumber: number, unique: string, name: string) =>
    `${runId}/${taskId}/${mapIndex}/${tryNumber}/${unique}/${name}`,
  /** Name prefix of one run's artifacts (to delete a cleaned run's). */
  ofRun: (runId: string) => `${runId}/`,
} as const;

/** The object store bucket for values too large for a message (results and work items), and its object names. */
export const VALUES_BUCKET = "mf-values";
export const objects = {
  /** Name prefixes of one run's stored results and work items (to delete a cleaned run's). */
  ofRun: (runId: string) => [`results/${runId}/`, `work/${runId}/`],
  /** `unique` tells apart two copies of one try (a paused worker's and its replacement's); the log records one. */
  result: (runId: string, taskId: string, mapIndex: number, tryNumber: number, unique: string) =>
    `results/${runId}/${taskId}/${mapIndex}/${tryNumber}/${unique}`,
  work: (workMsgId: string) => workMsgId,
} as const;

export const KEYS = { coordinatorLease: "coordinator", coordinatorSnapshot: "snapshot" } as const;

export const consumers = {
  /** One durable per queue, shared by every worker serving that queue. */
  workers: (queue: string) => `mf-workers-${queue}`,
  /** The leading coordinator's, on the dead-letter stream. */
  deadLetters: "mf-dead-letters",
} as const;

/**
 * Run ids. A manual run's is a ULID made by whoever requests it; a
 * scheduled run's is made from its DAG and logical date, so whichever
 * coordinator requests it (a restart, a standby taking over) names the same
 * run, and the fence on its request subject lets only the first one in.
 */
export const runIds = {
  /** `<dagId>__scheduled__20240101T000000Z` from the logical date in ISO form (`toISOString()`; the service formats it). */
  scheduled: (dagId: string, logicalDateIso: string) => `${dagId}__scheduled__${logicalDateIso.replace(/\.\d+Z$/, "Z").replace(/[-:]/g, "")}`,
  /** The DAG and logical-date stamp of a scheduled run id, or undefined for any other run id. */
  parseScheduled: (runId: string) => {
    const match = /^(.+)__scheduled__(\d{8}T\d{6}Z)$/.exec(runId);
    return match ? { dagId: match[1]!, stamp: match[2]! } : undefined;
  },
} as const;

/** Message ids JetStream deduplicates on (within the stream's duplicate window). */
export const msgIds = {
  dag: (dagId: string, version: string) => `dag/${dagId}/${version}`,
  run: (runId: string) => `run/${runId}`,
  instance: (runId: string, taskId: string, mapIndex: number, tryNumber: number) =>
    `${runId}/${taskId}/${mapIndex}/${tryNumber}`,
  /** `unique` is made once per batch, so the worker's retries of one append are one message. */
  outcomes: (runId: string, taskId: string, unique: string) => `outcomes/${runId}/${taskId}/${unique}`,
  started: (runId: string, taskId: string, mapIndex: number, tryNumber: number) =>
    `started/${runId}/${taskId}/${mapIndex}/${tryNumber}`,
  work: (runId: string, taskId: string, mapIndex: number, tryNumber: number) =>
    `work/${runId}/${taskId}/${mapIndex}/${tryNumber}`,
  /** The instance a work message id names, to fail it when its body cannot be read. */
  parseWork: (id: string) => {
    const [kind, runId, taskId, mapIndex, tryNumber] = id.split("/");
    if (kind !== "work" || !runId || !taskId || !Number.isInteger(Number(mapIndex)) || !Number.isInteger(Number(tryNumber))) return undefined;
    return { runId, taskId, mapIndex: Number(mapIndex), try: Number(tryNumber) };
  },
} as const;
