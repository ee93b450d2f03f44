// The web UI in real headless Chromium against a real stack: the seed DAG's graph with `add [6]`, the grid,
// the mapped instances and one's logs, a clear seen live, and time travel through the run's history.
// Screenshots go to $MAPFLOW_SCREENSHOTS (`make screenshots` sets docs/screenshots), else to a temp dir.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Browser, Page } from "playwright-core";
import { loadDags, pickDag, type DagBag } from "../libs/dags/index.ts";
import { createLogger } from "../libs/log/index.ts";
import { startStack, type Stack } from "../services/stack/index.ts";
import { requestRun, waitForRun } from "../services/cli/runs.ts";
import { STATE_COLOURS } from "../services/ui/client/states.ts";
import { bearer, FIXTURES, ROOT, tempDir } from "./helpers/index.ts";
import { noteOf } from "./fixtures/artifacts/artifacts.ts";

/** scripts/chromium.sh finds (or installs, as root with apt) Chromium, or says why there is none. */
function findChromium(): { path?: string; why?: string } {
  try {
    const path = execFileSync("bash", [join(ROOT, "scripts", "chromium.sh")], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();
    return path ? { path } : { why: "no Chromium on this machine and none could be installed (see scripts/chromium.sh)" };
  } catch (err) {
    return { why: `scripts/chromium.sh failed: ${(err as Error).message}` };
  }
}

const chromium = findChromium();
if (!chromium.path) process.stderr.write(`mapflow: skipping the browser tests: ${chromium.why}\n`);
const skip = chromium.path ? false : chromium.why;

const dir = tempDir();
const shots = process.env.MAPFLOW_SCREENSHOTS ? resolve(ROOT, process.env.MAPFLOW_SCREENSHOTS) : join(dir.path, "screenshots");
let stack: Stack;
let browser: Browser;
let page: Page;
let base: string;
let runId: string;
let bag: DagBag;

/** The same colour as the browser reports it for an SVG fill. */
const rgb = (hex: string) => `rgb(${[1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)).join(", ")})`;
const shot = (name: string, fullPage = true) => page.screenshot({ path: join(shots, `${name}.png`), fullPage });

before(async () => {
  if (skip) return;
  mkdirSync(shots, { recursive: true });
  const examples = await loadDags(join(ROOT, "examples"));
  const groups = await loadDags(join(FIXTURES, "mapping"));
  const wide = await loadDags(join(ROOT, "scripts", "bench", "dags"));
  const files = await loadDags(join(FIXTURES, "artifacts"));
  // The examples, a DAG with a mapped task group (the group box), the benchmark's wide fan-out (a live run) and one that stores artifacts.
  bag = {
    ...examples,
    dags: new Map([...examples.dags, ...[...groups.dags].filter(([id]) => id === "mapped_group"), ...wide.dags, ...[...files.dags].filter(([id]) => id === "artifacts")]),
  };
  stack = await startStack({ dataDir: dir.path, bag, log: createLogger("test", "warn"), ui: { port: 0 } });
  base = stack.ui!.url;
  const { version, dag } = pickDag(bag, "sample_repeated_mapping");
  runId = await requestRun(stack.nats, { dagId: "sample_repeated_mapping", version, spec: dag.spec, conf: {} });
  await waitForRun(stack.nats, runId);
  const { chromium: launcher } = await import("playwright-core");
  browser = await launcher.launch({
    executablePath: chromium.path,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-quic"],
  });
  page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
});

after(async () => {
  await browser?.close();
  await stack?.stop();
  dir.remove();
});

test("a page opened without the token asks for it; a pasted one signs in, a wrong one is refused", { skip }, async () => {
  const context = await browser.newContext({ viewport: { width: 1000, height: 600 } });
  try {
    const fresh = await context.newPage();
    await fresh.goto(base);
    const screen = fresh.locator("section.token-screen");
    await screen.waitFor();
    assert.match((await screen.textContent()) ?? "", /needs its API token.*printed as a link.*api-token/);
    await screen.locator("input").fill("not-the-token-of-this-ui");
    await screen.locator("button.primary").click();
    await fresh.locator("section.token-screen", { hasText: "was refused" }).waitFor();
    await screen.locator("input").fill(stack.ui!.token.value);
    await screen.locator("button.primary").click();
    await fresh.locator('tr[data-dag="sample_repeated_mapping"]').waitFor();
    // Signing out forgets it.
    await fresh.locator("header.top button.sign-out").click();
    await screen.waitFor();
    assert.equal(await fresh.evaluate(() => localStorage.getItem("mapflow.apiToken")), null);
  } finally {
    await context.close();
  }
});

test("the DAG's graph shows the mapped task as `add [ ]` before any expansion", { skip }, async () => {
  // The link a first start prints signs in: the token moves from the fragment into storage and out of the address bar.
  await page.goto(`${base}/dags/sample_repeated_mapping#token=${stack.ui!.token.value}`);
  await page.waitForURL(`${base}/dags/sample_repeated_mapping`);
  const add = page.locator('g.node[data-task="add"] text.label');
  await add.waitFor();
  assert.equal(await add.textContent(), "add [ ]");
  await shot("dag-graph");
});

test("a task group is one box that opens to show its tasks", { skip }, async () => {
  await page.goto(`${base}/dags/mapped_group`);
  const group = page.locator('g.node.group[data-task="group:model"]');
  await group.waitFor();
  assert.match((await group.locator("text.label").textContent()) ?? "", /model \[3 tasks\]/);
  assert.equal(await page.locator('g.node[data-task="model.fit"]').count(), 0, "closed: its tasks are hidden");
  await group.click();
  await page.locator('g.node[data-task="model.fit"]').waitFor();
  assert.equal(await page.locator('g.node[data-task="model.fold"] text.label').textContent(), "fold [ ]");
  assert.equal(await page.locator("g.cluster").count(), 1);
  await shot("group-open");
});

test("the DAG list shows each DAG with its last runs, and the trigger dialog checks the conf", { skip }, async () => {
  await page.goto(base);
  const dot = page.locator(`tr[data-dag="sample_repeated_mapping"] .run-dots a[title^="${runId}"] .dot`);
  await dot.waitFor();
  assert.equal(await dot.getAttribute("data-state"), "success");
  await page.locator('tr[data-dag="sample_repeated_mapping"] button.primary').click();
  const conf = page.locator(".dialog textarea");
  await conf.fill("{ not json");
  await page.locator(".dialog .conf-error").waitFor();
  assert.equal(await page.locator(".dialog button.primary").isDisabled(), true);
  await conf.fill("{}");
  await shot("dags");
  await page.locator(".dialog button.primary").click();
  // A trigger lands on the new run's page, which finishes live.
  await page.waitForURL(/\/runs\/[0-9A-Z]{26}$/);
  await page.locator('.run-state[data-state="success"]').waitFor({ timeout: 30_000 });
});

test("a run's graph shows `add [6]`, each box coloured by its state, and a bar of the instances' states", { skip }, async () => {
  await page.goto(`${base}/runs/${runId}`);
  const add = page.locator('g.node[data-task="add"]');
  await add.locator("text.label", { hasText: "add [6]" }).waitFor();
  assert.equal(await add.getAttribute("data-state"), "success");
  const stripe = await add.locator("rect.state-stripe").evaluate((el) => getComputedStyle(el).fill);
  assert.equal(stripe, rgb(STATE_COLOURS["success"]!));
  assert.match((await add.locator("text.sub").textContent()) ?? "", /6 ✓/);
  assert.equal(await page.locator('g.node[data-task="print_x"] text.label').textContent(), "print_x");
  await shot("run-graph");
});

test("the grid shows runs as columns and the mapped cell's counts", { skip }, async () => {
  await page.goto(`${base}/dags/sample_repeated_mapping?view=grid`);
  const cells = page.locator("table.grid tbody tr").filter({ hasText: "add [ ]" }).locator("td.cell");
  await cells.first().waitFor();
  assert.ok((await cells.count()) >= 2, "a column per run");
  assert.equal((await cells.first().textContent())?.trim(), "6 ✓");
  assert.equal(await cells.first().getAttribute("data-state"), "success");
  await shot("grid");
});

test("the task panel lists every mapped instance; an instance opens its result and its logs", { skip }, async () => {
  await page.goto(`${base}/runs/${runId}`);
  await page.locator('g.node[data-task="add"]').click();
  const rows = page.locator("table.instances tbody tr");
  await rows.nth(5).waitFor();
  assert.equal(await rows.count(), 6);
  assert.deepEqual(await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute("data-map-index"))), ["0", "1", "2", "3", "4", "5"]);
  await rows.nth(1).click();
  await page.locator("section.instance pre.result", { hasText: "12" }).waitFor();
  await shot("instances");
  await page.locator('g.node[data-task="print_x"]').click();
  await page.locator("table.instances tbody tr").first().click();
  await page.locator("section.instance nav.tabs button", { hasText: "logs" }).click();
  const log = page.locator('.try-log[data-try="1"] pre');
  await log.waitFor();
  assert.match((await log.textContent()) ?? "", /INFO +reduce received the mapped results/);
  await shot("logs");
});

test("an instance's artifacts tab links each try's files for download; the Workers page lists the live workers", { skip }, async () => {
  const { version, dag } = pickDag(bag, "artifacts");
  const id = await requestRun(stack.nats, { dagId: "artifacts", version, spec: dag.spec, conf: {} });
  await waitForRun(stack.nats, id);
  await page.goto(`${base}/runs/${id}?task=write&instance=1`);
  await page.locator('section.instance nav.tabs button[data-tab="artifacts"]').click();
  const links = page.locator("table.artifacts tbody tr a");
  await links.nth(1).waitFor();
  assert.deepEqual(await links.allTextContents(), ["data.bin", "note.txt"]);
  const href = await links.nth(1).getAttribute("href");
  assert.equal(await page.evaluate(async (url) => (await fetch(url!)).text(), href), noteOf("b"));
  await shot("artifacts", false);

  await page.locator("header.top a", { hasText: "Workers" }).click();
  const row = page.locator("table.workers tbody tr").first();
  await row.waitFor();
  assert.match((await row.textContent()) ?? "", /default/);
  await shot("workers", false);
});

test("clearing one instance re-runs it, and the open page shows it live without a reload", { skip }, async () => {
  await page.goto(`${base}/runs/${runId}?task=add`);
  const row = page.locator('table.instances tbody tr[data-map-index="3"]');
  await row.waitFor();
  await page.evaluate(() => ((window as unknown as { notReloaded: boolean }).notReloaded = true));
  await row.locator('input[type="checkbox"]').check();
  await page.locator(".pager button", { hasText: "Clear 1 picked" }).click();
  await page.locator(".notice", { hasText: "cleared 1 instance" }).waitFor();
  // The second try's row arrives through the live stream.
  await page.locator('table.instances tbody tr[data-map-index="3"][data-state="success"] td:nth-child(4)', { hasText: "2" }).waitFor({ timeout: 30_000 });
  await page.locator('.run-state[data-state="success"]').waitFor({ timeout: 30_000 });
  assert.equal(await page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded), true, "the page was not reloaded");
});

test("history: the slider shows the graph as it stood at an earlier event", { skip }, async () => {
  await page.goto(`${base}/runs/${runId}?view=history`);
  const slider = page.locator('.slider input[type="range"]');
  await slider.waitFor();
  const label = page.locator('.history-view g.node[data-task="add"] text.label');
  assert.equal(await label.textContent(), "add [6]");
  // After the first event (RunRequested) nothing is expanded yet.
  await slider.fill("1");
  await page.locator(".slider .at", { hasText: "RunRequested" }).waitFor();
  assert.equal(await label.textContent(), "add [ ]");
  assert.equal(await page.locator('.history-view g.node[data-task="add"]').getAttribute("data-state"), "pending");
  // Step forward to the expansion: six instances, none finished.
  const events = (await (await fetch(`${base}/api/runs/${runId}/history`, { headers: bearer(stack.ui!.token.value) })).json()) as { events: { event: { type: string; taskId?: string } }[] };
  const expanded = events.events.findIndex((e) => e.event.type === "TaskExpanded" && e.event.taskId === "add") + 1;
  assert.ok(expanded > 1);
  await slider.fill(String(expanded));
  await page.locator(".slider .at", { hasText: "TaskExpanded add" }).waitFor();
  assert.equal(await label.textContent(), "add [6]");
  assert.doesNotMatch((await page.locator('.history-view g.node[data-task="add"] text.sub').textContent()) ?? "", /✓/);
  await shot("history");
});

test("a run of 10,000 instances updates live: the mapped box counts up while it runs, without a reload", { skip, timeout: 120_000 }, async () => {
  const { version, dag } = pickDag(bag, "bench_fanout");
  const apiCalls: string[] = [];
  page.on("request", (r) => {
    if (r.url().includes("/api/") && !r.url().endsWith("/api/live")) apiCalls.push(r.url());
  });
  const wideRun = await requestRun(stack.nats, { dagId: "bench_fanout", version, spec: dag.spec, conf: { n: 10_000 } });
  await page.goto(`${base}/runs/${wideRun}?task=each`);
  const sub = page.locator('g.node[data-task="each"] text.sub');
  await sub.waitFor();
  const seen = new Set<string>();
  // Read the box as the live stream moves it, until the run's badge says success.
  while ((await page.locator(".run-state").getAttribute("data-state")) !== "success") {
    seen.add((await sub.textContent()) ?? "");
    await page.waitForTimeout(50);
  }
  await page.locator('g.node[data-task="each"] text.sub', { hasText: "10000 ✓" }).waitFor();
  const intermediate = [...seen].filter((t) => /\d+ ✓/.test(t) && !t.startsWith("10000 ✓"));
  assert.ok(intermediate.length >= 1, `the box showed counts while the run was under way (saw: ${[...seen].join(" | ")})`);
  assert.equal(await page.locator('table.instances tbody tr[data-map-index="0"]').getAttribute("data-state"), "success");
  process.stderr.write(`live 10,000-instance run: ${seen.size} distinct box texts seen, ${apiCalls.length} API requests in all\n`);
  await shot("live-10k", false);
});
