/** Connecting to NATS and making sure mapflow's streams exist. */
import { AuthorizationError, connect, nanos, type NatsConnection } from "@nats-io/transport-node";
import {
  DiscardPolicy, jetstream, jetstreamManager, JetStreamApiCodes, JetStreamApiError, RetentionPolicy, StorageType,
  type JetStreamClient, type JetStreamManager, type StreamConfig,
} from "@nats-io/jetstream";
import { STREAMS, subjects } from "../names/index.ts";
import { BadInputError, UnreachableError } from "../errors.ts";
import { refusal, type NatsAuth } from "./auth.ts";
import { isTransient } from "./eventlog.ts";
import { Publisher } from "./publisher.ts";
import { LOG_MAX_AGE_MS, MAX_LOG_LINE_BYTES } from "./logs.ts";

export type Nats = {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  /** Acknowledged publishes for the hot paths (events, work): see publisher.ts. */
  readonly publisher: Publisher;
};

/** How long JetStream remembers message ids to drop duplicates (results, work, run requests). */
export const DUPLICATE_WINDOW_MS = 2 * 60_000;

/** `a,b,c` or a list: every server of a cluster, so the client can fail over between them. */
function serverList(servers: string | readonly string[]): string[] {
  return (typeof servers === "string" ? servers.split(",") : [...servers]).map((s) => s.trim()).filter(Boolean);
}

/**
 * Connects as `auth`'s role (none: a server without users, such as one a
 * user runs by hand). Replies come back on the role's own inbox prefix,
 * the only inbox nats-roles.conf lets it listen on.
 */
export async function connectNats(servers: string | readonly string[], name: string, auth?: NatsAuth): Promise<Nats> {
  let nc: NatsConnection;
  const list = serverList(servers);
  const inboxPrefix = auth ? `_INBOX_${auth.user}` : undefined;
  try {
    // Reconnect forever: the client's default gives up after about 20 s, and a
    // service should ride out a nats-server restart of any length.
    // No async traces: the client would otherwise build two Error objects (stack captures) for every
    // request and JetStream publish, which profiling showed to be a fifth of a worker's time.
    nc = await connect({
      servers: list, name, maxReconnectAttempts: -1, reconnectTimeWait: 250, waitOnFirstConnect: false, timeout: 5000, noAsyncTraces: true,
      ...(auth ? { user: auth.user, pass: auth.pass, inboxPrefix } : {}),
    });
  } catch (cause) {
    if (cause instanceof AuthorizationError || /authorization/i.test((cause as Error).message)) {
      throw new BadInputError(
        auth
          ? `NATS at ${list.join(", ")} refused user '${auth.user}': the password does not match. Use the credentials file of the stack you mean (<data>/nats/credentials.json, --credentials) or MAPFLOW_NATS_USER / MAPFLOW_NATS_PASSWORD`
          : `NATS at ${list.join(", ")} needs a user and password: pass --credentials <file> (the stack writes <data>/nats/credentials.json) or set MAPFLOW_NATS_USER / MAPFLOW_NATS_PASSWORD`,
        { cause },
      );
    }
    throw new UnreachableError(
      `cannot reach NATS at ${list.join(", ")}: ${(cause as Error).message}. Check that the stack is running (mapflow standalone) and that --nats or --data points at it`,
      { cause },
    );
  }
  // No API check here: a cluster's JetStream may still be electing its leader; ensureStreams waits for it.
  return { nc, js: jetstream(nc), jsm: await jetstreamManager(nc, { checkAPI: false }), publisher: new Publisher(nc, inboxPrefix) };
}

/**
 * Stream replicas: 3 when the server is part of a cluster, else 1. Taken
 * from the server's cluster membership, not from how many nodes are up
 * now, so a first start with a node down waits for it instead of quietly
 * making R2 streams that cannot survive the loss of one more.
 */
export function replicasFor(nc: NatsConnection): number {
  return nc.info?.cluster ? 3 : 1;
}

const STREAM_CONFIGS: readonly (Partial<StreamConfig> & { name: string })[] = [
  {
    name: STREAMS.events,
    subjects: [subjects.allEvents],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    duplicate_window: nanos(DUPLICATE_WINDOW_MS),
  },
  {
    name: STREAMS.work,
    subjects: [subjects.allWork],
    storage: StorageType.File,
    retention: RetentionPolicy.Workqueue,
    // Full limits refuse new work rather than dropping work already queued.
    discard: DiscardPolicy.New,
    duplicate_window: nanos(DUPLICATE_WINDOW_MS),
  },
  {
    // An advisory is published once: stored here, it still reaches a coordinator that was down when it came.
    name: STREAMS.deadLetters,
    subjects: [subjects.workMaxDeliveries],
    storage: StorageType.File,
    retention: RetentionPolicy.Workqueue,
  },
  {
    // Task output, read by people: kept for a while, then aged out, since nothing replays it.
    name: STREAMS.logs,
    subjects: [subjects.allLogs],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    max_age: nanos(LOG_MAX_AGE_MS),
    max_msg_size: MAX_LOG_LINE_BYTES,
  },
];

/** Waits until JetStream answers (a cluster elects its leader first), with a clear error if it never does. */
async function jetStreamReady(nats: Nats, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await nats.jsm.getAccountInfo();
      return;
    } catch (err) {
      if (Date.now() > deadline) {
        throw new UnreachableError(
          `JetStream does not answer at ${nats.nc.getServer()} (${(err as Error).message}); the server needs JetStream enabled, and a cluster needs a majority of its nodes up`,
          { cause: err },
        );
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

/** What a cluster still forming answers to an R3 stream ("insufficient resources", "no suitable peers"): wait for its peers. */
const FORMING = new Set([10023, 10005]);

/** Whether JetStream's answer to a replicated stream means "not enough peers yet". */
export function stillForming(err: unknown): boolean {
  return err instanceof JetStreamApiError && FORMING.has(err.code);
}

export async function ensureStreams(nats: Nats, timeoutMs = 30_000): Promise<void> {
  const jsm = nats.jsm;
  await jetStreamReady(nats, timeoutMs);
  const replicas = replicasFor(nats.nc);
  const deadline = Date.now() + timeoutMs;
  for (const config of STREAM_CONFIGS) {
    for (;;) {
      let failure: Error;
      try {
        await jsm.streams.info(config.name);
        break;
      } catch (err) {
        // "Stream not found" is the one answer that means the stream must be created.
        const missing = err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound;
        if (!missing && !isTransient(err)) throw err;
        failure = new UnreachableError(
          `JetStream does not answer for stream ${config.name} at ${nats.nc.getServer()} (${(err as Error).message}); a cluster needs a majority of its nodes up`,
          { cause: err },
        );
        if (missing) {
          // A cluster that is still forming refuses an R3 stream ("insufficient resources"): try again until it has its peers.
          try {
            await jsm.streams.add({ ...config, num_replicas: replicas });
            break;
          } catch (addErr) {
            if (refusal(addErr)) {
              // A worker, the projector or the API may not make streams: wait for a coordinator (or an admin) to.
              failure = new UnreachableError(`stream ${config.name} does not exist yet and this user may not create it; start a coordinator (it makes the streams) or the stack first`, { cause: addErr });
            } else {
              if (!stillForming(addErr) && !isTransient(addErr)) throw addErr;
              failure = new UnreachableError(`cannot create stream ${config.name} with ${replicas} replicas: ${(addErr as Error).message}; a cluster needs all its nodes up the first time`, { cause: addErr });
            }
          }
        }
      }
      if (Date.now() > deadline) throw failure;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

/**
 * Closes a service's connection the way a clean stop should: its
 * subscriptions drained and everything it published (a last ack or nak)
 * flushed to the server first. One already closed, or that cannot drain
 * (the server is gone), is simply closed.
 */
export async function drainNats(nats: Nats, timeoutMs = 5000): Promise<void> {
  if (nats.nc.isClosed()) return;
  let timer: NodeJS.Timeout | undefined;
  try {
    // A server that is away would keep a drain's flush waiting: then only close.
    const drained = await Promise.race([nats.nc.drain().then(() => true), new Promise<boolean>((resolve) => (timer = setTimeout(resolve, timeoutMs, false)))]);
    if (!drained) await nats.nc.close();
  } catch {
    await nats.nc.close();
  } finally {
    clearTimeout(timer);
  }
}
