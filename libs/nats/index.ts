export * from "./connect.ts";
export * from "./server.ts";
export * from "./eventlog.ts";
export * from "./work.ts";
export * from "./cluster.ts";
export * from "./values.ts";
export * from "./logs.ts";
export * from "./records.ts";
