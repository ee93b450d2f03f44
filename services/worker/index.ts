/**
 * A worker: stateless. Pulls work for its queue, runs the task code from the
 * DAG files it loaded, appends the outcome with a deterministic message id
 * (so a redelivered item cannot record a second result), then acks.
 */
import { hostname } from "node:os";
import { PubHeaders, type JsMsg } from "@nats-io/jetstream";
import { decodeEvent, decodeWork, encodeTaskValue } from "../../libs/codec/index.ts";
import type { WorkItem } from "../../libs/core/work.ts";
import { finishedInstance, type ErrorInfo, type InstanceFailed, type InstancesFinished, type InstanceSucceeded } from "../../libs/events/index.ts";
import { outcomeBytes, outcomeGroups, type Finished } from "./outcomes.ts";
import { consumers, DEFAULT_QUEUE, HEADERS, msgIds, objects, STREAMS, subjects } from "../../libs/names/index.ts";
import { appendEvent, DUPLICATE_WINDOW_MS, hasOutcome, fetchBytes, fetchValue, INLINE_VALUE_BYTES, isTransient, lazyValueStore, maxValueBytes, storeValue, whileJetStreamRecovers, type Nats } from "../../libs/nats/index.ts";
import { ulid } from "ulid";
import type { DagBag } from "../../libs/dags/index.ts";
import type { Logger } from "../../libs/log/index.ts";
import { runShell } from "./shell.ts";
import { renderLabel, taskArgs } from "./inputs.ts";
import { taskSpec } from "../../libs/core/spec.ts";
import { errorInfo, failureOf } from "../../libs/core/failure.ts";
import type { StoredValue } from "../../libs/core/stored.ts";
import { ensureWorkConsumer, HAND_BACK_DELAY_MS, pullWork, type PullSettings } from "./pull.ts";
import { heldWork, type Hold } from "./held.ts";
import { tryContext } from "./context.ts";
import { tryLogs } from "./logs.ts";
import { tryArtifacts, type TryArtifacts } from "./artifacts.ts";
import { taskKvs } from "./kv.ts";
import { announcePresence } from "./presence.ts";
import { instanceDuration, runningTries, queueDepths, workHandedBack, workRedeliveries } from "../../libs/metrics/index.ts";

export type WorkerOptions = {
  nats: Nats;
  log: Logger;
  bag: DagBag;
  queue?: string;
  /** Instances run at once by this process. */
  concurrency?: number;
  /** Redelivery deadline for an item whose worker went silent (default 30 s); running items heartbeat well inside it. */
  ackWaitMs?: number;
  /** How often a running item tells JetStream it is alive (default a third of ackWaitMs). */
  heartbeatMs?: number;
  /** Deliveries of one work message before it is given up as failed (default 5). */
  maxDeliver?: number;
  /** Work messages handed out at once across the queue's workers (default 10,000). */
  maxAckPending?: number;
  name?: string;
  /**
   * Results larger than this fail their instance; default MAPFLOW_MAX_VALUE_BYTES, else 64 MB.
   * Results over 1 MB go to the object store and the log records a reference.
   */
  maxResultBytes?: number;
  /** How often the worker's heartbeat (`mapflow workers`) is written (default WORKER_BEAT_MS, 5 s). */
  presenceMs?: number;
  /**
   * A try still running after this long is recorded as `running` (InstanceStarted).
   * Shorter tries go straight to their outcome: two messages per instance, not three.
   */
  startedEventAfterMs?: number;
};

export type StopOptions = {
  /**
   * How long running tries may take to finish (default DEFAULT_GRACE_MS);
   * those still running then are handed back (nak with a delay) for another
   * worker, their task code aborted, nothing recorded for them.
   */
  graceMs?: number;
};

/**
 * A worker's stop: take no new work, let running tries finish within the
 * grace period, hand back the rest, then leave (its heartbeat removed).
 * Nothing half-done is appended: a try either records its outcome whole or
 * records nothing and runs again elsewhere under the same try number.
 */
export type Worker = { readonly name: string; stop(options?: StopOptions): Promise<void> };

/** How long a stopping worker lets its running tries finish before it hands them back. */
export const DEFAULT_GRACE_MS = 30_000;

/** How long after JetStream answers again a failed batch's outcomes are looked for (see appendBatch). */
const BATCH_SETTLE_MS = 2000;

/** How far the server's clock (which stamps stored work) may be from this worker's, for `unsureBefore`. */
const CLOCK_MARGIN_MS = 2000;

/** How long a stop waits for outcomes already being appended (a JetStream that is recovering) before it leaves them to redelivery. */
const APPENDS_WAIT_MS = 10_000;

/** The abort reason of a try handed back by a stopping worker: its handler hands the message back instead of recording a failure. */
const HANDED_BACK = new Error("the worker is stopping: this try was handed back for another worker to run");

/**
 * Instances one worker process runs at once, unless told. As Temporal's
 * workers, high: a try waiting on I/O or on its append holds a slot, and a
 * pull fetches only as many items as there are free slots, so the slots
 * are also how deep the pipeline to JetStream is. With 8 a map of short
 * tasks ran at 60% of the rate it has with 64; with 128 at 110-114% of it.
 * Since outcomes that finish together are appended as one event, more of
 * them finish together: 256 ran maps of 10,000 and 100,000 short tasks
 * 8-20% faster than 128 (alternating runs), and 512 no faster than 256.
 * The queue's default max-ack-pending (10,000) still serves some 39
 * workers at full depth. Long or heavy tasks want fewer (`--concurrency`).
 */
export const DEFAULT_CONCURRENCY = 256;

/** Appends a DagRegistered event for each loaded DAG whose version the log does not have yet. */
export async function registerDags(nats: Nats, bag: DagBag, now = Date.now): Promise<void> {
  for (const { dag, version } of bag.dags.values()) {
    const id = dag.spec.id;
    const last = await nats.jsm.streams.getMessage(STREAMS.events, { last_by_subj: subjects.dagRegistered(id) });
    if (last) {
      const known = decodeEvent(last.data, last.header.get(HEADERS.eventType) || undefined);
      if (known.type === "DagRegistered" && known.version === version) continue;
    }
    await appendEvent(nats, { type: "DagRegistered", dagId: id, version, spec: dag.spec, at: now() }, { msgId: msgIds.dag(id, version) });
  }
}

export async function startWorker(options: WorkerOptions): Promise<Worker> {
  const { nats, bag } = options;
  const queue = options.queue ?? DEFAULT_QUEUE;
  const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
  const ackWaitMs = options.ackWaitMs ?? 30_000;
  const maxResultBytes = options.maxResultBytes ?? maxValueBytes();
  const startedEventAfterMs = options.startedEventAfterMs ?? 500;
  const name = options.name ?? `${hostname()}:${process.pid}:${queue}`;
  const log = options.log.child({ worker: name });

  // Fault injection for the tests that prove a crash between the append and the ack records nothing twice.
  const crashAfterAppend = process.env["MAPFLOW_TEST_CRASH"] === "after-append";
  const heartbeatMs = options.heartbeatMs ?? Math.max(500, Math.floor(ackWaitMs / 3));
  const settings: PullSettings = { queue, concurrency, ackWaitMs, maxDeliver: options.maxDeliver ?? 5, maxAckPending: options.maxAckPending ?? 10_000 };
  await ensureWorkConsumer(nats, settings);
  await registerDags(nats, bag);
  const values = lazyValueStore(nats);
  const fetch = (ref: StoredValue) => whileJetStreamRecovers(async () => fetchValue(await values(), ref));
  const logs = tryLogs(nats, log);
  const tools = { artifacts: tryArtifacts(nats, maxResultBytes), kv: taskKvs(nats) };
  /** Tries running now, for the heartbeat. */
  let running = 0;
  /** Set once stop() begins: no try starts after it. */
  let stopping = false;

  /** Tries in progress per run, each as its abort function, so a stopped run's can be aborted. */
  const tries = new Map<string, Set<(reason: Error) => void>>();
  const held = heldWork(heartbeatMs, startedEventAfterMs, ackWaitMs / 2);
  /**
   * Work stored before this (epoch ms) may have been delivered before, even when JetStream says it
   * was not: a server that went down may come back without the deliveries and acks it had not yet
   * written, and hand such work out again as new. Set when the connection drops or comes back.
   */
  let unsureBefore = 0;
  /**
   * JetStream was away (the connection dropped, or a step had to wait for it: a cluster may have lost
   * its quorum with this connection up): heartbeats sent meanwhile never arrived, so what is held now
   * may be redelivered too, and work stored until now may come again as new.
   */
  const unsure = () => {
    held.lapseAll();
    unsureBefore = Date.now() + CLOCK_MARGIN_MS;
  };
  void (async () => {
    for await (const status of nats.nc.status()) if (status.type === "disconnect" || status.type === "reconnect") unsure();
  })().catch(() => {});
  // A cluster can move the work's leader with this connection up: the new one may hand out again what was acked.
  const elections = subjects.workLeaderElected.map((subject) => nats.nc.subscribe(subject, { callback: () => unsure() }));
  /**
   * Whether this try may have run before, or may run again elsewhere: its work was redelivered,
   * published again by the coordinator, stored before JetStream was last away, or is older than the
   * work stream's duplicate window (a coordinator's restart then publishes a second message for it).
   */
  const mayRepeat = (msg: JsMsg, item: WorkItem) => msg.info.redelivered || item.again === true || mayBeCopied(msg);
  const mayBeCopied = (msg: JsMsg) => {
    const stored = msg.info.timestampNanos / 1e6;
    return stored < unsureBefore || Date.now() - stored >= DUPLICATE_WINDOW_MS;
  };
  const redeliveries = workRedeliveries.slot(queue);
  const handedBack = workHandedBack.slot(queue);
  /** Runs told to stop, and when (bounded): their work published before then is dropped; a later clear's is not. */
  const stopped = new Map<string, number>();
  const stops = nats.nc.subscribe(subjects.allRunStops, {
    callback: (err, msg) => {
      if (err) return;
      const runId = subjects.runOfStop(msg.subject);
      if (!runId) return;
      stopped.set(runId, Date.now());
      if (stopped.size > 10_000) stopped.delete(stopped.keys().next().value!);
      for (const abort of tries.get(runId) ?? []) abort(new Error(`run ${runId} was stopped (cancelled or timed out)`));
    },
  });

  /**
   * Runs a JetStream step of handling an item, retrying it while JetStream
   * recovers (a restart, a leader election); the item stays ours meanwhile
   * (it is held): a redelivery would spend one of its MaxDeliver tries, and
   * a failed append would run the task again.
   */
  function recovering<T>(step: () => Promise<T>): Promise<T> {
    return whileJetStreamRecovers(step, Math.max(60_000, ackWaitMs), { onRetry: unsure });
  }

  /** Batches' message ids: this process's own ULID and a count (a ULID each cost 16 calls for random bytes). */
  const batchPrefix = ulid();
  let batches = 0;

  /** Tries that finished in this turn of the event loop, waiting to append their outcomes together. */
  let finishing: Finished[] = [];
  const appendTogether = () => {
    const now = Date.now();
    // Judged as they go out, not as each try finished: the process may have been paused in between.
    // A try that may have another copy (one held while JetStream was away, or whose work may have been
    // published twice) looks for the other's outcome and appends alone, under the try's own message id,
    // so the log keeps one of them.
    const wave = finishing.map((f) => (f.repeat || !(f.hold.lapsed(now) || mayBeCopied(f.msg)) ? f : { ...f, repeat: true }));
    finishing = [];
    for (const group of outcomeGroups(wave)) void appendGroup(group).catch((err) => log.error({ err }, "appending outcomes failed"));
  };

  /**
   * Whether the log holds an outcome of this try already, waiting while JetStream recovers: a try that
   * may have run before is not run again when it does (its worker died before the ack), nor recorded twice.
   */
  function recorded(t: Pick<WorkItem, "runId" | "taskId" | "mapIndex" | "try">): Promise<boolean> {
    return recovering(() => hasOutcome(nats, t.runId, t.taskId, t.mapIndex, t.try));
  }

  /**
   * Appends one try's outcome alone, under the try's own message id, and acks its work. A try that
   * may have run before looks again first: another copy's outcome may have landed while it ran.
   */
  async function appendAlone(f: Finished): Promise<void> {
    const { event } = f;
    if (!(f.repeat && (await recorded(event)))) {
      await recovering(() => appendEvent(nats, event, { msgId: msgIds.instance(event.runId, event.taskId, event.mapIndex, event.try) }));
      if (crashAfterAppend) process.kill(process.pid, "SIGKILL");
    }
    f.msg.ack();
  }

  /**
   * Appends several tries' outcomes as one InstancesFinished and acks their work. Tried once: if it
   * fails, its work may be redelivered meanwhile, so each outcome is then appended alone under its
   * try's id (the id a redelivered copy's outcome also has), unless the batch did land after all.
   */
  async function appendBatch(group: Finished[]): Promise<void> {
    const first = group[0]!.event;
    const batch: InstancesFinished = { type: "InstancesFinished", runId: first.runId, taskId: first.taskId, worker: name, outcomes: group.map((f) => finishedInstance(f.event)), at: Date.now() };
    try {
      await appendEvent(nats, batch, { msgId: msgIds.outcomes(first.runId, first.taskId, `${batchPrefix}.${++batches}`) });
    } catch (err) {
      if (!isTransient(err)) throw err;
      unsure();
      log.warn({ err, runId: first.runId, taskId: first.taskId, outcomes: group.length }, "could not append a batch of outcomes; appending each alone once JetStream is back");
      // The failed append may still land: a stream that lost its quorum commits what its leader had
      // once the quorum is back. Look for the outcomes only when JetStream answers, and a while after.
      await recorded(first);
      await new Promise((r) => setTimeout(r, BATCH_SETTLE_MS));
      await Promise.all(group.map(async (f) => {
        try {
          if (await recorded(f.event)) f.msg.ack();
          else await appendAlone({ ...f, repeat: false });
        } catch (err) {
          giveBack([f], err);
        }
      }));
      return;
    }
    if (crashAfterAppend) process.kill(process.pid, "SIGKILL");
    for (const f of group) f.msg.ack();
  }

  /** Appends one group's outcomes (one event, or InstancesFinished for several) and acks their work, or hands it all back. */
  async function appendGroup(group: Finished[]): Promise<void> {
    try {
      await (group.length === 1 ? appendAlone(group[0]!) : appendBatch(group));
    } catch (err) {
      giveBack(group, err);
    } finally {
      for (const f of group) f.done();
    }
  }

  /** Outcomes not recorded (or not acked, the connection closing): their work goes back for this or another worker to try again. */
  function giveBack(unrecorded: Finished[], err: unknown): void {
    const first = unrecorded[0]!.event;
    log.error({ err, runId: first.runId, taskId: first.taskId, mapIndexes: unrecorded.map((f) => f.event.mapIndex), try: first.try }, "could not append the outcome; handing the work back");
    for (const f of unrecorded) {
      try {
        f.msg.nak(1000);
      } catch {
        // the connection is gone: the ack deadline hands it back
      }
    }
  }

  /**
   * Appends a try's outcome and acks its work; `logsStored` first, so a reader who sees the outcome finds the try's log lines.
   * Outcomes of one turn go out together: a wide map of short tasks spent more on one message per outcome than on anything else.
   */
  async function outcome(msg: JsMsg, hold: Hold, event: InstanceSucceeded | InstanceFailed, resultBytes: number, repeat: boolean, logsStored?: Promise<void>): Promise<void> {
    if (logsStored) await logsStored;
    const bytes = resultBytes + outcomeBytes(event);
    await new Promise<void>((done) => {
      if (finishing.push({ msg, hold, event, bytes, repeat, done }) === 1) setImmediate(appendTogether);
    });
  }

  /** The loaded DAG the item needs, or an error saying why this worker cannot run it. */
  function dagFor(item: WorkItem) {
    const loaded = bag.dags.get(item.dagId);
    if (!loaded) throw new Error(`worker ${name} has no DAG '${item.dagId}' (it loaded ${bag.dir}); start workers with the folder that holds it`);
    if (loaded.version !== item.dagVersion) {
      throw new Error(`the run uses version ${item.dagVersion} of DAG '${item.dagId}', but worker ${name} loaded version ${loaded.version} from ${loaded.file}; run workers with the same DAG files as the run`);
    }
    const operator = loaded.dag.operators.get(item.taskId);
    if (!operator) throw new Error(`DAG '${item.dagId}' in ${loaded.file} has no task '${item.taskId}'`);
    return { dag: loaded.dag, operator };
  }

  /** Records a failure for work that cannot run (unreadable, or for a DAG this worker lacks), then drops it. */
  async function poisoned(msg: JsMsg, hold: Hold, instance: { runId: string; taskId: string; mapIndex: number; try: number } | undefined, error: ErrorInfo): Promise<void> {
    log.error({ subject: msg.subject, ...instance, error: error.message }, "work cannot run; recording the failure");
    if (!instance) {
      msg.term(); // nothing names its instance: nothing to fail
      return;
    }
    const now = Date.now();
    await outcome(msg, hold, { type: "InstanceFailed", ...instance, worker: name, error, startedAt: now, at: now }, 0, true);
  }

  /** The work item, from the message or, for one too large to travel inline, from the object it names. */
  async function workOf(msg: JsMsg): Promise<WorkItem> {
    // Only a stored item's message has an empty body: the others need no header parsing.
    const object = msg.data.length === 0 ? msg.headers?.get(HEADERS.workObject) : undefined;
    return decodeWork(object ? await recovering(async () => fetchBytes(await values(), object)) : msg.data);
  }

  /** Handles one message, holding it (kept alive, announced if long) until it is acked or handed back. */
  async function handle(msg: JsMsg): Promise<void> {
    if (msg.info.deliveryCount > 1) redeliveries.n++;
    const hold = held.hold(msg);
    try {
      await handleHeld(msg, hold);
    } finally {
      hold.release();
    }
  }

  async function handleHeld(msg: JsMsg, hold: Hold): Promise<void> {
    let item: WorkItem;
    try {
      item = await workOf(msg);
    } catch (err) {
      if (isTransient(err)) throw err; // not poison: JetStream is still recovering; the item comes back
      const named = msgIds.parseWork(msg.headers?.get(PubHeaders.MsgIdHdr) ?? "");
      await poisoned(msg, hold, named, { name: "UnreadableWork", message: `the work message for this instance cannot be decoded (${(err as Error).message}); it was dropped` });
      return;
    }
    try {
      dagFor(item);
    } catch (err) {
      // Another worker may have this DAG version (a rolling deploy): hand it back, and fail it on the last delivery.
      if (msg.info.deliveryCount < settings.maxDeliver) {
        log.warn({ runId: item.runId, taskId: item.taskId, mapIndex: item.mapIndex, try: item.try, err: (err as Error).message }, "cannot run this work here; handing it back");
        msg.nak(1000);
        return;
      }
      await poisoned(msg, hold, item, errorInfo(err));
      return;
    }
    const repeat = mayRepeat(msg, item);
    if (repeat && (await recorded(item))) {
      msg.ack();
      return;
    }
    const wait = item.notBefore - Date.now();
    if (wait > 0) {
      msg.nak(wait); // a retry's delay: JetStream redelivers it then
      return;
    }
    const stoppedAt = stopped.get(item.runId);
    if (stoppedAt !== undefined && msg.info.timestampNanos / 1e6 <= stoppedAt) {
      msg.term(); // the run ended after this was queued; nothing would record this try
      return;
    }
    if (stopping) {
      msg.nak(HAND_BACK_DELAY_MS); // this worker is stopping: another one starts it
      return;
    }
    const attempt = tryContext(item, logs, tools);
    running++;
    const { ctx } = attempt;
    const runTries = tries.get(item.runId) ?? new Set<(reason: Error) => void>();
    tries.set(item.runId, runTries.add(attempt.abort));
    const base = { runId: item.runId, taskId: item.taskId, mapIndex: item.mapIndex, try: item.try, worker: name };
    const startedAt = Date.now();
    hold.running(startedAt, () => {
      appendEvent(nats, { type: "InstanceStarted", ...base, startedAt, at: Date.now() }, { msgId: msgIds.started(item.runId, item.taskId, item.mapIndex, item.try) })
        .catch((err) => log.warn({ err, runId: item.runId, taskId: item.taskId, mapIndex: item.mapIndex, try: item.try }, "could not record that the instance is running"));
    });
    let timer: NodeJS.Timeout | undefined;
    let label: string | undefined;
    try {
      const timeout = item.timeoutMs
        ? new Promise<never>((_, reject) => {
            timer = setTimeout(() => {
              const err = new Error(`task '${item.taskId}' timed out after ${item.timeoutMs} ms`);
              attempt.abort(err);
              reject(err);
            }, item.timeoutMs!);
          })
        : null;
      const run = Promise.resolve().then(async () => {
        const { dag, operator } = dagFor(item);
        const args = await taskArgs(item, dag.functions, fetch);
        label = renderLabel(taskSpec(dag.spec, item.taskId).options.mapIndexLabel, args, dag.functions);
        return operator.kind === "shell" ? runShell(args, operator, ctx) : operator.fn(args, ctx);
      });
      const result = await Promise.race(timeout ? [run, timeout, attempt.aborted] : [run, attempt.aborted]);
      const artifacts = attempt.artifacts && (await artifactsOf(attempt.artifacts));
      const { event: succeeded, bytes } = await recordable({ type: "InstanceSucceeded", ...base, ...(label !== undefined ? { label } : {}), ...artifacts, result, startedAt, at: Date.now() });
      instanceDuration.observe(item.dagId, item.taskId, (succeeded.at - startedAt) / 1000);
      await outcome(msg, hold, succeeded, bytes, repeat, attempt.log?.stored());
    } catch (err) {
      if (err === HANDED_BACK) {
        // Not a failure and not recorded: the same try runs again on another worker.
        attempt.log?.log.warn("this worker is stopping: the try was handed back unfinished and runs again on another worker");
        msg.nak(HAND_BACK_DELAY_MS);
        handedBack.n++;
        return;
      }
      // The worker's own line, not stored with the task's: the error itself is recorded in InstanceFailed.
      log.error({ err, runId: item.runId, taskId: item.taskId, mapIndex: item.mapIndex, try: item.try }, "task failed");
      const artifacts = attempt.artifacts && (await artifactsOf(attempt.artifacts));
      const at = Date.now();
      instanceDuration.observe(item.dagId, item.taskId, (at - startedAt) / 1000);
      await outcome(msg, hold, { type: "InstanceFailed", ...base, ...(label !== undefined ? { label } : {}), ...artifacts, ...failureOf(err), startedAt, at }, 0, repeat, attempt.log?.stored());
    } finally {
      running--;
      clearTimeout(timer);
      runTries.delete(attempt.abort);
      if (runTries.size === 0) tries.delete(item.runId);
    }
  }

  /**
   * The artifacts a try stored, for its outcome event (a failed try's too: they may be what explains it).
   * Asked only of a try that wrote any, so the others' outcomes wait for nothing.
   */
  async function artifactsOf(artifacts: TryArtifacts): Promise<{ artifacts?: InstanceSucceeded["artifacts"] }> {
    const stored = await artifacts.seal();
    return stored.length ? { artifacts: stored } : {};
  }

  /**
   * The success event as it will be appended, and its result's size: the result checked to be
   * storable, and moved to the object store when too large to travel inline.
   */
  async function recordable(succeeded: InstanceSucceeded): Promise<{ event: InstanceSucceeded; bytes: number }> {
    let data: Uint8Array;
    try {
      data = encodeTaskValue(succeeded.result, "result");
    } catch (err) {
      throw new Error(`task '${succeeded.taskId}' returned a value that cannot be stored: ${(err as Error).message}; return plain data: numbers, strings, lists, objects`);
    }
    if (data.byteLength > maxResultBytes) {
      throw new Error(`task '${succeeded.taskId}' returned ${data.byteLength} bytes, over the ${maxResultBytes}-byte limit for a result (MAPFLOW_MAX_VALUE_BYTES); write large data elsewhere and return a reference (a path or URL)`);
    }
    if (data.byteLength <= INLINE_VALUE_BYTES) return { event: succeeded, bytes: data.byteLength };
    const key = objects.result(succeeded.runId, succeeded.taskId, succeeded.mapIndex, succeeded.try, ulid());
    return { event: { ...succeeded, result: await recovering(async () => storeValue(await values(), key, data)) }, bytes: key.length };
  }

  const puller = pullWork(nats, log, settings, handle);
  const presence = await announcePresence(nats, log, { name, queues: [queue], concurrency, running: () => running }, options.presenceMs);
  const unwatch = [
    runningTries.watch(async () => ({ queue, running })),
    queueDepths.watch(async () => {
      const info = await nats.jsm.consumers.info(STREAMS.work, consumers.workers(queue));
      return [{ queue, pending: info.num_pending, ackPending: info.num_ack_pending }];
    }),
  ];

  /** Aborts every try still running; each hands its message back (see HANDED_BACK). One already recording its outcome is not affected. */
  function handBack(): void {
    for (const runTries of tries.values()) for (const abort of runTries) abort(HANDED_BACK);
  }

  log.info({ queue, concurrency, dags: [...bag.dags.keys()] }, "worker started");
  return {
    name,
    async stop(stopOptions = {}) {
      const graceMs = stopOptions.graceMs ?? DEFAULT_GRACE_MS;
      stopping = true;
      await puller.stop();
      const settled = puller.settled();
      if (running > 0) log.info({ running, graceMs }, "stopping: taking no more work; letting the running tries finish");
      let timer: NodeJS.Timeout | undefined;
      const inTime = await Promise.race([settled.then(() => true), new Promise<boolean>((resolve) => (timer = setTimeout(resolve, graceMs, false)))]);
      clearTimeout(timer);
      if (!inTime) {
        const before = handedBack.n;
        handBack();
        // Outcomes already being appended finish (or, with JetStream away, are left to redelivery, which finds them if they landed).
        const done = await Promise.race([settled.then(() => true), new Promise<boolean>((resolve) => (timer = setTimeout(resolve, APPENDS_WAIT_MS, false)))]);
        clearTimeout(timer);
        log.warn({ handedBack: handedBack.n - before, graceMs }, "stopping: handed back the tries still running after the grace period; other workers run them");
        if (!done) log.warn("stopping without the last outcomes acknowledged; their work is redelivered and not recorded twice");
      }
      stops.unsubscribe();
      for (const sub of elections) sub.unsubscribe();
      held.stop();
      for (const remove of unwatch) remove();
      await presence.stop();
      log.info("worker stopped");
    },
  };
}
