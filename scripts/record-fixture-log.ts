/**
 * Records a golden log for `test/audit.e2e.test.ts`: a few runs made by
 * today's code (a fan-out and reduce, a failing instance, a retry, a failure
 * that is not retried, a clear of one instance), archived as `db clean`
 * writes archives, with the digest of each run's rows when replayed. Later code must replay this file
 * to the same digests: when an event's shape changes, bump SCHEMA_VERSION,
 * add an upcaster, and keep this file as it is. Run it again only to add a
 * log of a new schema version beside the old ones:
 *
 *   node --import tsx scripts/record-fixture-log.ts test/fixtures/log/v6
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { tmpdir } from "node:os";
import Database from "better-sqlite3";
import { loadDags, pickDag, type DagBag } from "../libs/dags/index.ts";
import { createLogger } from "../libs/log/index.ts";
import { readRecords } from "../libs/nats/index.ts";
import { SCHEMA_VERSION } from "../libs/events/index.ts";
import { runDigests } from "../libs/store/digest.ts";
import { startStack } from "../services/stack/index.ts";
import { requestRun, waitForRun } from "../services/cli/runs.ts";
import { clearRun } from "../services/cli/operate.ts";
import { readArchive, writeArchive } from "../services/audit/archive.ts";
import { replayToFile } from "../services/audit/replay.ts";

const out = resolve(process.argv[2] ?? `test/fixtures/log/v${SCHEMA_VERSION}`);
const root = resolve(import.meta.dirname, "..");
const dir = mkdtempSync(join(tmpdir(), "mapflow-fixture-log-"));
const examples = await loadDags(join(root, "examples"));
const fixtures = await loadDags(join(root, "test", "fixtures", "dags"));
const bag: DagBag = { ...examples, dags: new Map([...examples.dags, ...fixtures.dags]) };
const stack = await startStack({ dataDir: dir, bag, log: createLogger("fixture", "warn") });
try {
  const run = async (dagId: string) => {
    const { version, dag } = pickDag(bag, dagId);
    const runId = await requestRun(stack.nats, { dagId, version, spec: dag.spec, conf: {} });
    await waitForRun(stack.nats, runId);
    return runId;
  };
  const seed = await run("sample_repeated_mapping");
  await run("failing");
  await run("retry");
  await run("no_retry");
  const cleared = await clearRun(stack.nats, seed, "add", [2], true);
  await waitForRun(stack.nats, seed, undefined, cleared);

  mkdirSync(out, { recursive: true });
  const archive = join(out, "log.jsonl");
  await writeArchive(archive, readRecords(stack.nats));
  const replayed = join(dir, "replayed.sqlite");
  const { events } = await replayToFile(readArchive(archive), replayed);
  const db = new Database(replayed, { readonly: true });
  const digests = Object.fromEntries(runDigests(db));
  db.close();
  writeFileSync(join(out, "digests.json"), `${JSON.stringify({ schemaVersion: SCHEMA_VERSION, events, digests }, null, 2)}\n`);
  process.stdout.write(`recorded ${events} events of ${Object.keys(digests).length} runs in ${out}\n`);
} finally {
  await stack.stop();
  rmSync(dir, { recursive: true, force: true });
}
process.exit(0);
