/**
 * Starts and stops a real nats-server process: the embedded stack and every
 * integration test use this, each with its own port and store directory.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdirSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { authFor, CREDENTIALS_FILE, loadOrCreateCredentials, serverEnv, type Credentials, type NatsAuth, type Role } from "./auth.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const NATS_CONF = `${ROOT}nats.conf`;
/** "durable" mode: nats.conf plus fsync before every acknowledgement. */
export const NATS_DURABLE_CONF = `${ROOT}nats-durable.conf`;

export const DURABILITY_MODES = ["replicated", "durable"] as const;
export type Durability = (typeof DURABILITY_MODES)[number];

export function configFor(durability: Durability): string {
  return durability === "durable" ? NATS_DURABLE_CONF : NATS_CONF;
}

let binary: string | undefined;

/** A nats-server ≥ 2.10: from PATH, the tools folder, or fetched by scripts/nats-server.sh. */
export function natsServerBinary(): string {
  if (binary) return binary;
  try {
    binary = execFileSync("bash", [`${ROOT}scripts/nats-server.sh`], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }).trim();
  } catch {
    throw new Error("no nats-server 2.10 or newer is available (see the message above); install one or set MAPFLOW_NATS_SERVER");
  }
  return binary;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const address = srv.address();
      srv.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

export type NatsServer = {
  readonly url: string;
  readonly port: number;
  readonly storeDir: string;
  /** The server's process; for a server started with `ownGroup`, the shell that guards it. */
  readonly process: ChildProcess;
  /** Every role's password (the configs refuse a client without one), and the file that holds them. */
  readonly credentials: Credentials;
  readonly credentialsFile: string;
  /** How to connect to it as `role`. */
  auth(role: Role): NatsAuth;
  /** The end of what the server has logged, for an error to show. */
  log(): string;
  stop(signal?: NodeJS.Signals): Promise<void>;
};

export type NatsServerOptions = {
  storeDir: string;
  port?: number;
  config?: string;
  args?: readonly string[];
  /** The file of the roles' passwords; made if missing. Default: credentials.json in the store dir (a cluster shares one). */
  credentialsFile?: string;
  /**
   * Run the server out of this process's process group, guarded (see GUARD). A terminal's Ctrl-C
   * signals its whole foreground group at once: a server in it would quit while the services still
   * need it (workers finishing their tries, the coordinator releasing its lease). For the embedded stack.
   */
  ownGroup?: boolean;
};

/**
 * A shell that runs the server (its arguments) and stops it once this process ends, however it ends:
 * a watcher holds the read end of a pipe whose write end only this process has, so a kill -9 or a
 * closed terminal closes it too. The shell waits for the server through the signals the server gets
 * with it (a signal that comes before it is ready to pass one on is passed on after), and exits with
 * its status. It leads its own process group (`detached`), so the watcher is ended through the group:
 * by its pid it may have been reaped already, and the pid reused.
 */
const GUARD = [
  "trap 'stop=1' TERM INT HUP",
  '"$@" </dev/null 3<&- & server=$!',
  '(read -r _ || true; kill -TERM "$server" 2>/dev/null) <&3 &',
  'exec 3<&-',
  'trap \'kill -TERM "$server" 2>/dev/null\' TERM INT HUP',
  '[ -z "$stop" ] || kill -TERM "$server" 2>/dev/null',
  'wait "$server"; status=$?',
  'while kill -0 "$server" 2>/dev/null; do wait "$server"; status=$?; done',
  "trap '' TERM",
  'kill -s TERM -- -$$ 2>/dev/null',
  'exit "$status"',
].join("\n");

const LOG_TAIL_CHARS = 64 * 1024;

export async function startNatsServer(options: NatsServerOptions): Promise<NatsServer> {
  const port = options.port ?? (await freePort());
  mkdirSync(options.storeDir, { recursive: true });
  const credentialsFile = options.credentialsFile ?? join(options.storeDir, CREDENTIALS_FILE);
  const credentials = loadOrCreateCredentials(credentialsFile);
  const args = ["-c", options.config ?? NATS_CONF, "-a", "127.0.0.1", "-p", String(port), "-sd", options.storeDir, ...(options.args ?? [])];
  // The passwords reach the server through its environment, which nats-roles.conf reads; never on its command line.
  const env = { ...process.env, ...serverEnv(credentials) };
  const guarded = options.ownGroup === true;
  const child = guarded
    ? spawn("/bin/sh", ["-c", GUARD, "nats-server", natsServerBinary(), ...args], { stdio: ["ignore", "ignore", "pipe", "pipe"], env, detached: true })
    : spawn(natsServerBinary(), args, { stdio: ["ignore", "ignore", "pipe"], env });
  // The guard's pipe is only ever closed, never written: an error on it is the guard already gone.
  child.stdio[3]?.on("error", () => {});
  /** A signal for the server: a guarded one gets it with its guard, as its group. */
  const signal = (name: NodeJS.Signals) => {
    if (!guarded) child.kill(name);
    else if (child.pid !== undefined) {
      try {
        process.kill(-child.pid, name);
      } catch {
        // the group is gone already
      }
    }
  };
  let log = "";
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`nats-server did not become ready within 10 s:\n${log}`)), 10_000);
    const fail = (err: Error) => {
      clearTimeout(timer);
      if (child.exitCode === null && child.signalCode === null) signal("SIGKILL");
      reject(err);
    };
    child.stderr!.on("data", (chunk: Buffer) => {
      log += chunk.toString();
      if (log.includes("Server is ready")) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once("exit", (code) => fail(new Error(`nats-server exited with code ${code} before it was ready:\n${log}`)));
    child.once("error", (err) => fail(err));
  });
  child.stderr!.removeAllListeners("data");
  // Keep draining so the server never blocks on a full pipe, and keep the tail for a failure to show.
  child.stderr!.on("data", (chunk: Buffer) => {
    log = (log + chunk.toString()).slice(-LOG_TAIL_CHARS);
  });
  child.removeAllListeners("exit");
  const exited = new Promise<void>((resolve) =>
    child.once("exit", () => {
      // A guard that was itself killed leaves its watcher: closing the pipe makes it stop the server.
      child.stdio[3]?.destroy();
      resolve();
    }));
  // An embedded server must not outlive the process that started it; a guarded one is stopped cleanly.
  const reap = () => signal(guarded ? "SIGTERM" : "SIGKILL");
  process.once("exit", reap);
  void exited.then(() => process.removeListener("exit", reap));
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    storeDir: options.storeDir,
    process: child,
    credentials,
    credentialsFile,
    auth: (role) => authFor(credentials, role),
    log: () => log,
    async stop(stopSignal: NodeJS.Signals = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null) signal(stopSignal);
      await exited;
    },
  };
}
