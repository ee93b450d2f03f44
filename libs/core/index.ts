export * from "./spec.ts";
export * from "./state.ts";
export * from "./expand.ts";
export { evolve, fold } from "./evolve.ts";
export { decide } from "./decide.ts";
export * from "./work.ts";
export * from "./report.ts";
export { confFor } from "./params.ts";
export { clearPlan, type ClearPlan } from "./clear.ts";
