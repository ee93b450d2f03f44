// The reference in docs/ follows the code: the CLI page is made from the commands' help, and the
// other pages must name every event type, SDK export and API route there is.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { EVENT_TYPES } from "../libs/events/index.ts";
import * as sdk from "../libs/sdk/index.ts";
import { program } from "../services/cli/main.ts";
import { cliReference } from "../services/cli/reference.ts";
import { apiRoutes } from "../services/ui/api.ts";
import type { Router } from "../services/ui/http.ts";
import { ROOT } from "./helpers/index.ts";

const doc = (name: string) => readFileSync(join(ROOT, "docs", name), "utf8");

test("docs/cli.md is the commands' own help, as `make docs` writes it", () => {
  assert.ok(doc("cli.md") === `${cliReference(program)}\n`, "docs/cli.md is out of date: run `make docs` and commit it");
});

test("docs/events.md has a section for every event type", () => {
  const text = doc("events.md");
  const missing = EVENT_TYPES.filter((type) => !text.includes(`### \`${type}\``));
  assert.deepEqual(missing, [], "events without a section in docs/events.md");
});

test("docs/sdk.md names every export of the SDK", () => {
  const text = doc("sdk.md");
  const missing = Object.keys(sdk).filter((name) => !text.includes(`\`${name}\``));
  assert.deepEqual(missing, [], "SDK exports docs/sdk.md does not name");
});

test("docs/api.md names every route of the web API", () => {
  const routes = ["GET /api/live", "GET /metrics"];
  const recorder = {
    on(method: string, path: string) {
      routes.push(`${method} ${path}`);
      return recorder;
    },
  };
  // Only the routes are read: no handler runs, so the dependencies are never touched.
  apiRoutes(recorder as unknown as Router, {} as Parameters<typeof apiRoutes>[1]);
  const text = doc("api.md");
  assert.ok(routes.length > 10, `found the routes: ${routes.join(", ")}`);
  assert.deepEqual(routes.filter((r) => !text.includes(`\`${r}\``)), [], "routes docs/api.md does not name");
});

test("the README links each reference page", () => {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  for (const page of ["cli.md", "sdk.md", "events.md", "api.md"]) assert.match(readme, new RegExp(`\\]\\(docs/${page.replace(".", "\\.")}\\)`), `README links docs/${page}`);
});
