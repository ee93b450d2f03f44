// How `mapflow standalone` (what `make up` runs) ends: a terminal's Ctrl-C reaches its whole process
// group at once, and the embedded nats-server must still be there for the services' clean stop; a
// standalone killed with -9 must not leave its nats-server behind.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { cli, connectToStandalone, FIXTURE_DAGS, startCli, tempDir } from "./helpers/index.ts";
import { waitForEvent } from "./helpers/faults.ts";

type Standalone = { child: ChildProcess; output: () => string; port: number; exited: Promise<number | null> };

/** A standalone in a process group of its own, as a shell's foreground job is; it takes signals from its last line on. */
async function standalone(dataDir: string): Promise<Standalone> {
  const child = await startCli(["standalone", "--dags", FIXTURE_DAGS, "--data", dataDir, "--no-ui"], /serving;/, 30_000, {}, { detached: true });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const { url } = JSON.parse(readFileSync(join(dataDir, "stack.json"), "utf8")) as { url: string };
  return { child, output: child.output, port: Number(new URL(url).port), exited };
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, signal);
  } catch {
    // gone already
  }
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

test("Ctrl-C (SIGINT to the whole process group) stops the standalone cleanly: its nats-server outlasts the services' stop", async () => {
  const dir = tempDir();
  const s = await standalone(dir.path);
  try {
    const triggered = await cli(["trigger", "hold_slot", "--conf", '{"ms":1500}', "--data", dir.path, "--json"]);
    assert.equal(triggered.code, 0, triggered.stderr);
    const { runId } = JSON.parse(triggered.stdout) as { runId: string };
    const nats = await connectToStandalone(dir.path);
    try {
      await waitForEvent(nats, runId, (e) => e.type === "InstanceStarted");
    } finally {
      await nats.nc.close();
    }
    // A try is running: the worker lets it finish and appends its outcome, then the coordinator lets go of its lease.
    killGroup(s.child, "SIGINT");
    assert.equal(await s.exited, 0, s.output());
    assert.match(s.output(), /released the coordinator lease/);
    assert.doesNotMatch(s.output(), /could not release|"level":50/);
    assert.equal(await accepts(s.port), false, "the nats-server stopped with the standalone");
  } finally {
    killGroup(s.child, "SIGKILL");
    dir.remove();
  }
});

test("a standalone killed with -9 does not leave its nats-server running", async () => {
  const dir = tempDir();
  const s = await standalone(dir.path);
  try {
    assert.equal(await accepts(s.port), true);
    s.child.kill("SIGKILL"); // the standalone alone, not its group
    await s.exited;
    const deadline = Date.now() + 20_000;
    while (await accepts(s.port)) {
      assert.ok(Date.now() < deadline, "the nats-server still listens 20 s after its standalone was killed");
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    killGroup(s.child, "SIGKILL");
    dir.remove();
  }
});
