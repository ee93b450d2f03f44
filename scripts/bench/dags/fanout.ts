// The DAG `make bench` times: a list of `conf.n` numbers, a trivial mapped task over it, one reduce.
import { dag, task } from "mapflow";

export default dag({ id: "bench_fanout" }, () => {
  const numbers = task("numbers", (_: Record<string, never>, ctx) => Array.from({ length: Number(ctx.conf.n) }, (_, i) => i))({});
  const each = task("each", ({ i }: { i: number }) => i + 1).expand({ i: numbers });
  task("count", ({ xs }: { xs: number[] }) => xs.length)({ xs: each });
});
