/**
 * Whether a value a task hands over (its result, a `ctx.kv` value) arrives
 * through msgpack as it left. msgpack throws on a function, a symbol or a
 * BigInt without saying where it was, calls a value that contains itself
 * "too deep", and silently turns a Map, a Set, a Promise, a RegExp or an
 * Error into `{}` (a Float32Array into the bytes of its floats). Those are
 * refused here, each with where it was found and what to return instead.
 * Plain data passes, and what JSON would do is accepted: an undefined field
 * is left out and a class instance travels as its own fields. A Date, a
 * Uint8Array, NaN and ±Infinity arrive as they left.
 */

/** msgpack's own limit (its Encoder's maxDepth). */
const MAX_DEPTH = 100;

/** Where the problem is (keys from the top), what it is, and for a value that contains itself, how many keys lead to the copy it refers back to. */
type Found = { readonly keys: (string | number)[]; readonly problem: string; readonly backTo?: number };

/** What a built-in object that msgpack would carry wrongly is, and what to return instead; undefined for the others. */
function unfaithful(value: object): string | undefined {
  if (value instanceof Map) return "a Map (it would arrive as {}); return Object.fromEntries(map)";
  if (value instanceof Set) return "a Set (it would arrive as {}); return [...set]";
  if (value instanceof Promise) return "a Promise (it would arrive as {}); await it before returning";
  if (value instanceof RegExp) return "a RegExp (it would arrive as {}); return its source";
  if (value instanceof Error) return "an Error (it would arrive as {}); throw it to fail the task, or return its message";
  if (value instanceof WeakMap || value instanceof WeakSet || value instanceof WeakRef) return `a ${value.constructor.name}, which holds nothing that can be stored`;
  if (ArrayBuffer.isView(value) && !(value instanceof Uint8Array)) return `a ${value.constructor.name} (it would arrive as its raw bytes); return a plain array, or a Uint8Array of bytes`;
  if (value instanceof ArrayBuffer || (typeof SharedArrayBuffer !== "undefined" && value instanceof SharedArrayBuffer)) return "an ArrayBuffer (it would arrive as {}); return new Uint8Array(buffer)";
  return undefined;
}

function find(value: unknown, ancestors: object[]): Found | undefined {
  switch (typeof value) {
    case "function":
      return { keys: [], problem: "is a function" };
    case "symbol":
      return { keys: [], problem: "is a symbol" };
    case "bigint":
      return { keys: [], problem: `is a BigInt (${value}n); return it as a string, or as a number when it fits` };
    case "object":
      break;
    default:
      return undefined;
  }
  if (value === null || value instanceof Date || value instanceof Uint8Array) return undefined;
  const kind = unfaithful(value);
  if (kind) return { keys: [], problem: `is ${kind}` };
  const seen = ancestors.indexOf(value);
  if (seen !== -1) return { keys: [], problem: "refers back to", backTo: seen };
  if (ancestors.length >= MAX_DEPTH) return { keys: [], problem: `is nested more than ${MAX_DEPTH} levels deep` };
  ancestors.push(value);
  try {
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) {
        const found = find(value[i], ancestors);
        if (found) return { ...found, keys: [i, ...found.keys] };
      }
      return undefined;
    }
    for (const key of Object.keys(value)) {
      const found = find((value as Record<string, unknown>)[key], ancestors);
      if (found) return { ...found, keys: [key, ...found.keys] };
    }
    return undefined;
  } finally {
    ancestors.pop();
  }
}

/** `result.items[2].when`: where a problem was found, starting from `root`. */
function pathOf(root: string, keys: readonly (string | number)[]): string {
  return keys.reduce<string>((path, key) => (typeof key === "number" ? `${path}[${key}]` : /^[A-Za-z_$][\w$]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`), root);
}

/**
 * What in `value` would not arrive as it left, said from `root` (e.g.
 * "result.model is a function"); undefined when all of it would.
 */
export function unstorable(value: unknown, root = "the value"): string | undefined {
  const found = find(value, []);
  if (!found) return undefined;
  const where = pathOf(root, found.keys);
  if (found.backTo === undefined) return `${where} ${found.problem}`;
  return `${where} refers back to ${pathOf(root, found.keys.slice(0, found.backTo))}, which contains it, so it has no end`;
}
