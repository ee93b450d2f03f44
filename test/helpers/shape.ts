/**
 * The shape of a JSON value — its keys and the types of its values, not the
 * values — for snapshots of the CLI's `--json` output that ids, times and
 * counts do not change. An array's shape is one shape its elements share:
 * a key only some have is marked optional (`"error?"`), a value of several
 * types becomes a union (`"null|number"`, or `{ oneOf: [...] }` when an
 * object or array is among them).
 */
export type Shape = string | Shape[] | { [key: string]: Shape };

type ObjectShape = { [key: string]: Shape };

const isObject = (s: Shape): s is ObjectShape => typeof s === "object" && !Array.isArray(s);
const isUnion = (s: Shape): s is { oneOf: Shape[] } => isObject(s) && Object.keys(s).length === 1 && Array.isArray(s["oneOf"]);

/** `opaque`: keys whose values count as their type only (`"object"`), such as an event's payload, whose fields vary by event type. */
export function shape(value: unknown, opaque: ReadonlySet<string> = new Set()): Shape {
  if (value === null) return "null";
  if (Array.isArray(value)) return value.length === 0 ? [] : [value.map((v) => shape(v, opaque)).reduce(merge)];
  if (typeof value === "object") {
    const o = value as Record<string, unknown>;
    return Object.fromEntries(Object.keys(o).sort().map((k) => [k, opaque.has(k) ? typeOf(o[k]) : shape(o[k], opaque)]));
  }
  return typeof value;
}

function typeOf(value: unknown): string {
  return value === null ? "null" : Array.isArray(value) ? "array" : typeof value;
}

function alternatives(s: Shape): Shape[] {
  if (typeof s === "string") return s.split("|");
  return isUnion(s) ? s.oneOf : [s];
}

function mergeObjects(a: ObjectShape, b: ObjectShape): ObjectShape {
  const bare = (k: string) => k.replace(/\?$/, "");
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)].map(bare))].sort();
  return Object.fromEntries(keys.map((k) => {
    const x = a[k] ?? a[`${k}?`];
    const y = b[k] ?? b[`${k}?`];
    const required = k in a && k in b;
    return [required ? k : `${k}?`, x !== undefined && y !== undefined ? merge(x, y) : (x ?? y)!];
  }));
}

function mergeArrays(a: Shape[], b: Shape[]): Shape[] {
  if (a.length === 0) return b;
  if (b.length === 0) return a;
  return [merge(a[0]!, b[0]!)];
}

/** One shape that both fit. */
export function merge(a: Shape, b: Shape): Shape {
  const primitives = new Set<string>();
  let array: Shape[] | undefined;
  let object: ObjectShape | undefined;
  for (const alt of [...alternatives(a), ...alternatives(b)]) {
    if (typeof alt === "string") primitives.add(alt);
    else if (Array.isArray(alt)) array = array ? mergeArrays(array, alt) : alt;
    else object = object ? mergeObjects(object, alt) : alt;
  }
  const sorted = [...primitives].sort();
  if (!array && !object) return sorted.join("|");
  const alts: Shape[] = [...sorted, ...(array ? [array] : []), ...(object ? [object] : [])];
  return alts.length === 1 ? alts[0]! : { oneOf: alts };
}
