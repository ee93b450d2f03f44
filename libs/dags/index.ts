/**
 * Loads DAG files from a folder. Any file may import "mapflow", wherever it
 * lives: a resolve hook maps that name to this checkout's SDK. A file that
 * fails to load is reported with its path and the reason; other files
 * still load, as Airflow's DAG bag does.
 */
import { createHash } from "node:crypto";
import { readdirSync, statSync } from "node:fs";
import Module, { register } from "node:module";
import { join, resolve as resolvePath } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { Dag } from "../sdk/types.ts";
import { BadInputError } from "../errors.ts";
import { checkSchedule } from "../cron/index.ts";

export type LoadedDag = { readonly dag: Dag; readonly file: string; readonly version: string };
export type LoadError = { readonly file: string; readonly message: string };
export type DagBag = { readonly dir: string; readonly dags: ReadonlyMap<string, LoadedDag>; readonly errors: readonly LoadError[] };

let hooked = false;

const SDK_FILE = fileURLToPath(new URL("../sdk/index.ts", import.meta.url));

type Resolver = (this: unknown, request: string, ...rest: unknown[]) => string;

/**
 * Lets DAG files outside this repository `import … from "mapflow"`: the
 * resolve hook serves ES modules; a DAG file loaded as CommonJS (a .ts file
 * with no `"type": "module"` above it) resolves through require(), which
 * that hook does not see on Node 20 and which has no public hook there, so
 * its resolver is wrapped, as module-alias and tsconfig-paths do.
 */
export function ensureMapflowResolvable(): void {
  if (hooked) return;
  register(new URL("./resolve-hook.mjs", import.meta.url));
  const cjs = Module as unknown as { _resolveFilename: Resolver };
  const resolveFilename = cjs._resolveFilename;
  cjs._resolveFilename = function (request, ...rest) {
    return resolveFilename.call(this, request === "mapflow" ? SDK_FILE : request, ...rest);
  };
  hooked = true;
}

const DAG_FILE = /\.(ts|mts|js|mjs)$/;

function isDag(value: unknown): value is Dag {
  return typeof value === "object" && value !== null && (value as { kind?: unknown }).kind === "mapflow.dag";
}

/** A content hash of the graph and the code of its tasks: any change to either is a new version. */
export function dagVersion(dag: Dag): string {
  const hash = createHash("sha256").update(JSON.stringify(dag.spec));
  for (const [id, op] of dag.operators) hash.update(`\n${id}:${op.kind === "function" ? op.fn.toString() : JSON.stringify(op)}`);
  for (const [id, fn] of dag.functions) hash.update(`\n${id}:${fn.toString()}`);
  return hash.digest("hex").slice(0, 16);
}

export async function loadDags(dir: string): Promise<DagBag> {
  ensureMapflowResolvable();
  const root = resolvePath(dir);
  let names: string[];
  try {
    if (!statSync(root).isDirectory()) throw new Error("not a directory");
    names = readdirSync(root).filter((n) => DAG_FILE.test(n) && !n.endsWith(".d.ts") && !/\.test\.[mc]?[jt]s$/.test(n)).sort();
  } catch (cause) {
    throw new BadInputError(`cannot read the DAG folder '${root}': ${(cause as Error).message}; pass --dags <dir> with your DAG files`, { cause });
  }
  const dags = new Map<string, LoadedDag>();
  const errors: LoadError[] = [];
  for (const name of names) {
    const file = join(root, name);
    let module: Record<string, unknown>;
    try {
      module = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
    } catch (err) {
      errors.push({ file, message: err instanceof Error ? err.message : String(err) });
      continue;
    }
    for (const value of new Set(Object.values(module))) {
      if (!isDag(value)) continue;
      const other = dags.get(value.spec.id);
      if (other) {
        errors.push({ file, message: `DAG id '${value.spec.id}' is also defined in ${other.file}; DAG ids must be unique` });
        continue;
      }
      try {
        checkSchedule(value.spec.id, value.spec.schedule);
      } catch (err) {
        errors.push({ file, message: (err as Error).message });
        continue;
      }
      dags.set(value.spec.id, { dag: value, file, version: dagVersion(value) });
    }
  }
  return { dir: root, dags, errors };
}

/** The DAG to run, or a clear error naming what was found and what failed to load. */
export function pickDag(bag: DagBag, dagId: string): LoadedDag {
  const found = bag.dags.get(dagId);
  if (found) return found;
  const known = [...bag.dags.keys()].sort();
  const failed = bag.errors.map((e) => `\n  ${e.file}: ${e.message}`).join("");
  throw new BadInputError(
    `DAG '${dagId}' was not found in ${bag.dir}` +
      (known.length ? `; DAGs found: ${known.join(", ")}` : "; no DAGs were found there") +
      (failed ? `; files that failed to load:${failed}` : ""),
  );
}
