// Module resolve hook: a DAG file anywhere on disk imports "mapflow" and gets this checkout's SDK.
const sdk = new URL("../sdk/index.ts", import.meta.url).href;

export async function resolve(specifier, context, next) {
  if (specifier === "mapflow") return { url: sdk, shortCircuit: true };
  return next(specifier, context);
}
