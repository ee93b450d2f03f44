// The DAG `make bench` times: a list of `conf.n` numbers, a trivial mapped task over it, one reduce.
import { dag, task } from "mapflow";

export default dag({ id: "bench_fanout" }, () => {
  const numbers = task("numbers", (_: Record<string, never>, ctx) => Array.from({ length: Number(ctx.conf.n) }, (_, i) => i))({});
  // Above the default limit of 100,000 instances: `make bench --huge` maps 1,000,000.
  const each = task("each", ({ i }: { i: number }) => i + 1, { maxMapLength: 1_000_000 }).expand({ i: numbers });
  task("count", ({ xs }: { xs: number[] }) => xs.length)({ xs: each });
});
