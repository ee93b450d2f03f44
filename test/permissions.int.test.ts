// The roles of nats-roles.conf against a real nats-server started with the shipped nats.conf: each
// role connects with the credentials the server was started with, does what it needs, and is refused
// what it may not do. (That the services work with exactly these permissions is the rest of the
// suite: every embedded stack and test rig connects each service as its own role.)
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { statSync } from "node:fs";
import { join } from "node:path";
import { PermissionViolationError } from "@nats-io/transport-node";
import { Kvm } from "@nats-io/kv";
import {
  appendEvent, connectNats, ensureStreams, loadOrCreateCredentials, refusal, setLogRetention, startNatsServer, type Nats, type NatsServer, type Role,
} from "../libs/nats/index.ts";
import { BadInputError } from "../libs/errors.ts";
import { BUCKETS, STREAMS, subjects } from "../libs/names/index.ts";
import type { MapflowEvent } from "../libs/events/index.ts";
import { leaseBucket } from "../services/coordinator/lease.ts";
import { tempDir } from "./helpers/index.ts";

const dir = tempDir("mapflow-permissions-");
let server: NatsServer;
let admin: Nats;
const connections: Nats[] = [];

async function as(role: Role): Promise<Nats> {
  const nats = await connectNats(server.url, `test-${role}`, server.auth(role));
  connections.push(nats);
  return nats;
}

/** Rejected by the server's permissions, on a subject `subject` matches. */
async function refused(action: Promise<unknown>, subject: RegExp): Promise<void> {
  await assert.rejects(action, (err: unknown) => {
    const refused = refusal(err);
    assert.ok(refused, `a permission error, got ${String(err)}`);
    assert.match(refused.subject, subject);
    return true;
  });
}

const RUN = "01JPERMISSIONSTEST0000000AA";
const at = Date.now();
const events = {
  // A decision only the coordinator may append.
  expanded: { type: "TaskExpanded", runId: RUN, taskId: "add", count: 3, at } as MapflowEvent,
  requested: { type: "RunRequested", runId: RUN, dagId: "d", dagVersion: "v", spec: { dagId: "d", tasks: [] }, conf: {}, at } as unknown as MapflowEvent,
  paused: { type: "DagPaused", dagId: "d", paused: true, at } as MapflowEvent,
  succeeded: { type: "InstanceSucceeded", runId: RUN, taskId: "add", mapIndex: 0, try: 1, result: 1, worker: "w", startedAt: at, at } as MapflowEvent,
};

before(async () => {
  server = await startNatsServer({ storeDir: join(dir.path, "nats") });
  admin = await connectNats(server.url, "test-admin", server.auth("admin"));
  connections.push(admin);
  await ensureStreams(admin);
  await leaseBucket(admin, 10_000);
});

after(async () => {
  await Promise.all(connections.map((c) => c.nc.close()));
  await server.stop();
  dir.remove();
});

test("the credentials are made once, readable by their owner only, and the same after a restart", () => {
  const file = server.credentialsFile;
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.deepEqual(loadOrCreateCredentials(file), server.credentials);
  assert.equal(new Set(Object.values(server.credentials)).size, 5, "each role has its own password");
});

test("without a user, or with a wrong password, the server refuses the connection and says what to pass", async () => {
  await assert.rejects(connectNats(server.url, "nobody"), (err: unknown) => err instanceof BadInputError && /needs a user and password: pass --credentials/.test(err.message));
  await assert.rejects(connectNats(server.url, "guess", { user: "admin", pass: "guess" }), (err: unknown) => err instanceof BadInputError && /refused user 'admin'/.test(err.message));
});

test("a worker appends outcomes, log lines and registrations, and cannot forge a decision or a request, purge, delete or read the lease", async () => {
  const worker = await as("worker");
  const ack = await appendEvent(worker, events.succeeded);
  assert.ok(ack.seq > 0);
  await worker.publisher.publish(subjects.tryLog(RUN, "add", 0, 1), new Uint8Array([1]));

  await refused(appendEvent(worker, events.expanded), /^mf\.evt\.run\..*\.coord$/);
  await refused(appendEvent(worker, events.requested), /\.req$/);
  await refused(appendEvent(worker, events.paused), /\.paused$/);
  await refused(worker.publisher.publish(subjects.work("default", RUN, "add"), new Uint8Array([1])), /^mf\.work\./);
  await refused(worker.jsm.streams.purge(STREAMS.events), /STREAM\.PURGE\.MF_EVENTS/);
  await refused(worker.jsm.streams.delete(STREAMS.events), /STREAM\.DELETE\.MF_EVENTS/);
  await refused(worker.jsm.streams.deleteMessage(STREAMS.events, ack.seq), /STREAM\.MSG\.DELETE\.MF_EVENTS/);
  const lease = await new Kvm(worker.js).open(BUCKETS.leases);
  await refused(lease.get("coordinator"), /KV_mf-leases/);
  await refused(lease.put("coordinator", "me"), /\$KV\.mf-leases/);
});

test("no role can listen on another's inbox", async () => {
  const worker = await as("worker");
  const sub = worker.nc.subscribe("_INBOX_coordinator.>");
  const closed = await sub.closed;
  assert.ok(closed instanceof PermissionViolationError, `the subscription was refused, got ${String(closed)}`);
  assert.equal(closed.operation, "subscription");
});

test("the API appends requests and pauses, reads the log, and cannot decide, append outcomes, purge or delete", async () => {
  const api = await as("api");
  assert.ok((await appendEvent(api, events.requested)).seq > 0);
  assert.ok((await appendEvent(api, events.paused)).seq > 0);
  assert.ok((await api.jsm.streams.getMessage(STREAMS.events, { last_by_subj: subjects.requests(RUN) }))!.seq > 0);
  await refused(appendEvent(api, events.expanded), /\.coord$/);
  await refused(appendEvent(api, events.succeeded), /\.inst\./);
  await refused(api.jsm.streams.purge(STREAMS.events), /STREAM\.PURGE\.MF_EVENTS/);
  await refused(api.jsm.streams.delete(STREAMS.work), /STREAM\.DELETE\.MF_WORK/);
});

test("the projector reads and appends nothing", async () => {
  const projector = await as("projector");
  assert.ok((await projector.jsm.streams.info(STREAMS.events)).state.messages > 0);
  await refused(appendEvent(projector, events.succeeded), /\.inst\./);
  await refused(appendEvent(projector, events.requested), /\.req$/);
});

test("the coordinator decides and drops a run's work, and cannot purge or delete the log", async () => {
  const coordinator = await as("coordinator");
  assert.ok((await appendEvent(coordinator, events.expanded)).seq > 0);
  await coordinator.jsm.streams.purge(STREAMS.work, { filter: subjects.runWork(RUN) });
  await refused(coordinator.jsm.streams.purge(STREAMS.events), /STREAM\.PURGE\.MF_EVENTS/);
  await refused(coordinator.jsm.streams.delete(STREAMS.events), /STREAM\.DELETE\.MF_EVENTS/);
  await refused(appendEvent(coordinator, events.paused), /\.paused$/);
});

test("the coordinator sets how long task log lines are kept (--log-retention-days); a worker or the API may not", async () => {
  const coordinator = await as("coordinator");
  const days = (n: number) => n * 24 * 60 * 60_000;
  assert.equal(await setLogRetention(coordinator, days(7)), true);
  assert.equal((await admin.jsm.streams.info(STREAMS.logs)).config.max_age, days(7) * 1e6, "the stream keeps lines 7 days");
  assert.equal(await setLogRetention(coordinator, days(7)), false, "the same again changes nothing");
  await refused(setLogRetention(await as("worker"), days(1)), /STREAM\.UPDATE\.MF_LOGS/);
  await refused(setLogRetention(await as("api"), days(1)), /STREAM\.UPDATE\.MF_LOGS/);
  assert.equal((await admin.jsm.streams.info(STREAMS.logs)).config.max_age, days(7) * 1e6);
});

test("the admin may purge (mapflow db clean)", async () => {
  const purged = await admin.jsm.streams.purge(STREAMS.events, { filter: subjects.run(RUN) });
  assert.ok(purged.purged >= 3);
});
