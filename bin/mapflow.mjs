#!/usr/bin/env node
// The `mapflow` command: TypeScript runs through tsx (ESM and CommonJS hooks, as `node --import tsx`), with no build step.
import "tsx";

await import("../services/cli/main.ts");
