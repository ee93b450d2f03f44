/** Connecting to NATS and making sure mapflow's streams exist. */
import { connect, nanos, type NatsConnection } from "@nats-io/transport-node";
import {
  DiscardPolicy, jetstream, jetstreamManager, JetStreamApiError, RetentionPolicy, StorageType,
  type JetStreamClient, type JetStreamManager, type StreamConfig,
} from "@nats-io/jetstream";
import { STREAMS, subjects } from "../names/index.ts";
import { UnreachableError } from "../errors.ts";

export type Nats = { readonly nc: NatsConnection; readonly js: JetStreamClient; readonly jsm: JetStreamManager };

/** How long JetStream remembers message ids to drop duplicates (results, work, run requests). */
export const DUPLICATE_WINDOW_MS = 2 * 60_000;

export async function connectNats(servers: string | string[], name: string): Promise<Nats> {
  let nc: NatsConnection;
  try {
    // Reconnect forever: the client's default gives up after about 20 s, and a
    // service should ride out a nats-server restart of any length.
    nc = await connect({ servers, name, maxReconnectAttempts: -1, reconnectTimeWait: 250, waitOnFirstConnect: false, timeout: 5000 });
  } catch (cause) {
    const list = Array.isArray(servers) ? servers.join(", ") : servers;
    throw new UnreachableError(
      `cannot reach NATS at ${list}: ${(cause as Error).message}. Check that the stack is running (mapflow standalone) and that --nats or --data points at it`,
      { cause },
    );
  }
  return { nc, js: jetstream(nc), jsm: await jetstreamManager(nc) };
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
];

export async function ensureStreams(jsm: JetStreamManager): Promise<void> {
  for (const config of STREAM_CONFIGS) {
    try {
      await jsm.streams.info(config.name);
    } catch (err) {
      if (!(err instanceof JetStreamApiError)) throw err;
      try {
        await jsm.streams.add(config);
      } catch (addErr) {
        // Another service created it between our look and our add.
        if (!(addErr instanceof JetStreamApiError)) throw addErr;
        await jsm.streams.info(config.name);
      }
    }
  }
}
