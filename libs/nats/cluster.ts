/**
 * A 3-node JetStream cluster on loopback ports, for `mapflow cluster`,
 * `scripts/cluster` and the cluster tests: each node is a real nats-server
 * started with nats-cluster.conf and its own name, ports and store.
 */
import { createHash } from "node:crypto";
import { existsSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { StorageType } from "@nats-io/jetstream";
import { fileURLToPath } from "node:url";
import { freePort, startNatsServer, type NatsServer } from "./server.ts";
import { connectNats, stillForming } from "./connect.ts";
import { isTransient } from "./eventlog.ts";
import { authFor, CREDENTIALS_FILE, loadOrCreateCredentials, type Credentials, type NatsAuth, type Role } from "./auth.ts";

const CLUSTER_CONF = fileURLToPath(new URL("../../nats-cluster.conf", import.meta.url));

export type NodeSpec = { readonly name: string; readonly port: number; readonly routePort: number; readonly storeDir: string };

export type Cluster = {
  readonly nodes: readonly NodeSpec[];
  /** Client URLs of every node, for `--nats a,b,c`. */
  readonly urls: readonly string[];
  /** The roles' passwords, one file for all three nodes (in the cluster's dir). */
  readonly credentials: Credentials;
  readonly credentialsFile: string;
  auth(role: Role): NatsAuth;
  /** The last `lines` lines of each running node's log, headed by its name, for an error to show. */
  logs(lines?: number): string;
  /** Whether node i is running. */
  running(i: number): boolean;
  stop(i: number, signal?: NodeJS.Signals): Promise<void>;
  start(i: number): Promise<void>;
  close(): Promise<void>;
};

/** How long a new cluster gets to place a 3-replica stream, and how many times it is made. */
const FORMING_MS = 30_000;
const FORMING_ATTEMPTS = 3;
const PROBE_STREAM = "MF_FORMING_PROBE";

/** Whether the cluster places a 3-replica stream within FORMING_MS (the probe stream is removed again). */
async function placesReplicated(nodes: readonly NodeSpec[], auth: NatsAuth): Promise<boolean> {
  const nats = await connectNats(nodes.map((n) => `nats://127.0.0.1:${n.port}`).join(","), "mapflow-cluster-probe", auth);
  const deadline = Date.now() + FORMING_MS;
  try {
    for (;;) {
      try {
        await nats.jsm.streams.add({ name: PROBE_STREAM, subjects: ["_mapflow.forming"], storage: StorageType.Memory, num_replicas: 3 });
        await nats.jsm.streams.delete(PROBE_STREAM);
        return true;
      } catch (err) {
        if (!stillForming(err) && !isTransient(err)) throw err;
        if (Date.now() > deadline) return false;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  } finally {
    await nats.nc.close();
  }
}

export async function startCluster(dir: string, ports?: readonly { port: number; routePort: number }[]): Promise<Cluster> {
  // A cluster name of its own, stable for its stores: a node left running by another cluster on this
  // machine (a killed test run) that reaches one of these ports through its old routes is refused
  // instead of joining and confusing JetStream's placement, and a restart on the same stores keeps it.
  const name = `mapflow-${createHash("sha256").update(resolve(dir)).digest("hex").slice(0, 8)}`;
  const credentialsFile = join(dir, CREDENTIALS_FILE);
  const credentials = loadOrCreateCredentials(credentialsFile);
  const nodes: NodeSpec[] = [];
  const taken = new Set<number>();
  /** A free port no other node of this cluster was given (the kernel may hand the same one out twice). */
  const port = async (given: number | undefined) => {
    let p = given ?? (await freePort());
    while (given === undefined && taken.has(p)) p = await freePort();
    taken.add(p);
    return p;
  };
  for (let i = 0; i < 3; i++) {
    const given = ports?.[i];
    // Throwaway clusters (tests, any ports) name their servers after the cluster too: JetStream knows
    // its peers by name, and every test cluster on this machine calling its nodes n1…n3 let one's nodes
    // pass for another's. `mapflow cluster` (given ports) keeps n1…n3, which its stores already know.
    nodes.push({ name: ports ? `n${i + 1}` : `${name}-n${i + 1}`, port: await port(given?.port), routePort: await port(given?.routePort), storeDir: join(dir, `n${i + 1}`) });
  }
  const servers: (NatsServer | null)[] = [null, null, null];
  const start = async (i: number) => {
    const node = nodes[i]!;
    const routes = nodes.filter((n) => n !== node).map((n) => `nats://127.0.0.1:${n.routePort}`).join(",");
    servers[i] = await startNatsServer({
      storeDir: node.storeDir, port: node.port, config: CLUSTER_CONF, credentialsFile,
      args: ["-n", node.name, "--cluster_name", name, "--cluster", `nats://127.0.0.1:${node.routePort}`, "--routes", routes],
    });
  };
  // nats-server 2.10 now and then forms a new cluster's JetStream with two peers of three and never
  // takes the third in (its meta group reports size 2; no R3 stream can be placed, for minutes). Nothing
  // is lost on a cluster made a moment ago: start it again from empty stores. Stores that were there
  // before are never wiped, only used.
  const fresh = nodes.every((n) => !existsSync(join(n.storeDir, "jetstream")));
  for (let attempt = 1; ; attempt++) {
    await Promise.all([0, 1, 2].map(start));
    if (!fresh || attempt === FORMING_ATTEMPTS || (await placesReplicated(nodes, authFor(credentials, "admin")))) break;
    await Promise.all(servers.map((s) => s?.stop("SIGKILL")));
    for (const node of nodes) rmSync(node.storeDir, { recursive: true, force: true });
  }
  return {
    nodes,
    urls: nodes.map((n) => `nats://127.0.0.1:${n.port}`),
    credentials,
    credentialsFile,
    auth: (role) => authFor(credentials, role),
    logs: (lines = 30) => servers.map((s, i) => (s ? `--- ${nodes[i]!.name}\n${s.log().split("\n").slice(-lines - 1).join("\n")}` : `--- ${nodes[i]!.name}: stopped`)).join("\n"),
    running: (i) => servers[i] !== null,
    async stop(i, signal = "SIGKILL") {
      await servers[i]?.stop(signal);
      servers[i] = null;
    },
    start,
    async close() {
      await Promise.all(servers.map((s) => s?.stop()));
    },
  };
}
