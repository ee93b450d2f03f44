#!/usr/bin/env node
// The `mapflow` command: TypeScript runs through tsx (ESM and CommonJS hooks, as `node --import tsx`), with no build step.
import "tsx";

const { main } = await import("../services/cli/main.ts");
await main();
