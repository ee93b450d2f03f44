/**
 * The browser code, bundled by esbuild in memory when the server starts:
 * no build step and no built files to keep in step with the source. The
 * client folds history with the same `evolve` as the services, bundled in.
 */
import { build } from "esbuild";
import { fileURLToPath } from "node:url";

export type Bundle = { readonly js: string; readonly css: string };

const ENTRY = fileURLToPath(new URL("./client/main.tsx", import.meta.url));

export async function bundleClient(): Promise<Bundle> {
  const result = await build({
    entryPoints: [ENTRY],
    bundle: true,
    write: false,
    outdir: "/ui", // names the outputs; nothing is written
    format: "esm",
    platform: "browser",
    target: "es2022",
    jsx: "automatic",
    jsxImportSource: "preact",
    minify: true,
    sourcemap: "inline",
    logLevel: "silent",
  });
  const out = (ext: string) => result.outputFiles.find((f) => f.path.endsWith(ext))?.text ?? "";
  return { js: out(".js"), css: out(".css") };
}

export const INDEX_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mapflow</title>
<link rel="stylesheet" href="/app.css">
</head>
<body>
<div id="app"></div>
<script type="module" src="/app.js"></script>
</body>
</html>
`;
