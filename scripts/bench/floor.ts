/**
 * The floor for `make bench`: the raw JetStream pipeline mapflow is built on,
 * with the same client, server and acknowledged-publish path (publisher.ts)
 * and no mapflow code. Work messages go into
 * a work queue; a consumer process takes each, publishes one result and then
 * acks; a reader process reads the results back. Each role is its own
 * process, as mapflow's coordinator, workers and readers are, so one Node
 * thread is not the limit being measured. Two messages per loop, as mapflow
 * needs per instance: the limit of the design.
 *
 * Run by scripts/bench.ts; `node --import tsx scripts/bench/floor.ts <role> <url> <loops> <credentials file>` runs one role.
 */
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { AckPolicy, RetentionPolicy, StorageType } from "@nats-io/jetstream";
import { authFor, connectNats, readCredentials, type Nats, type NatsServer } from "../../libs/nats/index.ts";

const WINDOW = 512;
const WORK = { stream: "FLOOR_WORK", subject: "floor.work", consumer: "workers" };
const RESULTS = { stream: "FLOOR_RESULTS", subject: "floor.result" };

/** Takes `loops` work messages: publishes a result for each, acks it once the result is stored. */
async function worker(nats: Nats, loops: number): Promise<void> {
  const work = await (await nats.js.consumers.get(WORK.stream, WORK.consumer)).consume({ max_messages: 1024 });
  process.stdout.write("ready\n");
  const inFlight = new Set<Promise<void>>();
  let taken = 0;
  for await (const m of work) {
    const loop = nats.publisher.publish(RESULTS.subject, m.data).then(() => m.ack());
    inFlight.add(loop);
    void loop.finally(() => inFlight.delete(loop));
    if (inFlight.size >= WINDOW) await Promise.race(inFlight);
    if (++taken === loops) break;
  }
  await Promise.all(inFlight);
  await work.close();
}

/** Reads `loops` results back; prints when the last one arrived (epoch ms). */
async function reader(nats: Nats, loops: number): Promise<void> {
  const results = await (await nats.js.consumers.get(RESULTS.stream)).consume({ max_messages: 2048 });
  process.stdout.write("ready\n");
  let seen = 0;
  for await (const _ of results) if (++seen === loops) break;
  process.stdout.write(`done ${Date.now()}\n`);
  await results.close();
}

type Role = { lines: AsyncIterator<string>; exited: Promise<number | null> };

function startRole(role: "worker" | "reader", server: NatsServer, loops: number): Role {
  const child = spawn(process.execPath, ["--import", "tsx", fileURLToPath(import.meta.url), role, server.url, String(loops), server.credentialsFile], { stdio: ["ignore", "pipe", "inherit"] });
  return {
    lines: createInterface({ input: child.stdout! })[Symbol.asyncIterator](),
    exited: new Promise((resolve) => child.once("exit", resolve)),
  };
}

async function nextLine(role: Role, what: string): Promise<string> {
  const line = await role.lines.next();
  if (line.done) throw new Error(`the floor's ${what} exited early (code ${await role.exited})`);
  return line.value;
}

/** Loops per second through the raw pipeline, from the first work published to the last result read. */
export async function floorRate(nats: Nats, server: NatsServer, loops: number): Promise<number> {
  await nats.jsm.streams.add({ name: WORK.stream, subjects: [WORK.subject], storage: StorageType.File, retention: RetentionPolicy.Workqueue });
  await nats.jsm.streams.add({ name: RESULTS.stream, subjects: [RESULTS.subject], storage: StorageType.File });
  await nats.jsm.consumers.add(WORK.stream, { durable_name: WORK.consumer, ack_policy: AckPolicy.Explicit, max_ack_pending: 10_000 });
  const roles = { worker: startRole("worker", server, loops), reader: startRole("reader", server, loops) };
  await nextLine(roles.worker, "worker");
  await nextLine(roles.reader, "reader");
  const payload = new Uint8Array(64);
  const started = Date.now();
  for (let start = 0; start < loops; start += WINDOW) {
    const sends: Promise<unknown>[] = [];
    for (let i = start; i < Math.min(loops, start + WINDOW); i++) sends.push(nats.publisher.publish(WORK.subject, payload));
    await Promise.all(sends);
  }
  const done = Number((await nextLine(roles.reader, "reader")).split(" ")[1]);
  await Promise.all([roles.worker.exited, roles.reader.exited]);
  return loops / ((done - started) / 1000);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [role, url, loops, credentialsFile] = process.argv.slice(2);
  // The raw pipeline is no mapflow role: it connects as admin, the one user without permission checks.
  const nats = await connectNats(url!, `floor-${role}`, authFor(readCredentials(credentialsFile!), "admin"));
  await (role === "worker" ? worker : reader)(nats, Number(loops));
  await nats.nc.close();
}
