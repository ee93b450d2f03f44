// Module resolve hook: a DAG file anywhere on disk imports "mapflow" and gets this checkout's SDK.
// It hands the SDK's own URL on down the chain, so the TypeScript loader still claims the file.
const sdk = new URL("../sdk/index.ts", import.meta.url).href;

export async function resolve(specifier, context, next) {
  return next(specifier === "mapflow" ? sdk : specifier, context);
}
