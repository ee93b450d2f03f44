/**
 * A 3-node JetStream cluster on loopback ports, for `mapflow cluster`,
 * `scripts/cluster` and the cluster tests: each node is a real nats-server
 * started with nats-cluster.conf and its own name, ports and store.
 */
import { createHash } from "node:crypto";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort, startNatsServer, type NatsServer } from "./server.ts";
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
  /** Whether node i is running. */
  running(i: number): boolean;
  stop(i: number, signal?: NodeJS.Signals): Promise<void>;
  start(i: number): Promise<void>;
  close(): Promise<void>;
};

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
  await Promise.all([0, 1, 2].map(start));
  return {
    nodes,
    urls: nodes.map((n) => `nats://127.0.0.1:${n.port}`),
    credentials,
    credentialsFile,
    auth: (role) => authFor(credentials, role),
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
