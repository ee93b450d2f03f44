// Every mapping input and execution option, through the SDK and the pure core (no server).
import { test } from "node:test";
import assert from "node:assert/strict";
import { dag, task, taskGroup, zip, concat, NonRetryableError } from "../libs/sdk/index.ts";
import { Deferred } from "../libs/core/expand.ts";
import { retryDelay, DEFAULT_TASK_OPTIONS, TRIGGER_RULES } from "../libs/core/spec.ts";
import { triggerVerdict } from "../libs/core/trigger.ts";
import { decide, fold } from "../libs/core/index.ts";
import { DagDefinitionError } from "../libs/errors.ts";
import type { Ref } from "../libs/sdk/types.ts";
import { simulate, resultsOf } from "./helpers/simulate.ts";

const add = () => task("add", ({ x, y }: { x: number; y: number }) => x + y);
const collect = () => task("collect", ({ xs }: { xs: unknown[] }) => xs);

test("expandKwargs: one instance per object, from a literal list or an upstream output", async () => {
  const d = dag({ id: "kw" }, () => {
    add().expandKwargs([{ x: 1, y: 2 }, { x: 10, y: 20 }]);
    const pairs = task("pairs", () => [{ x: 3, y: 4 }, { x: 5, y: 6 }, { x: 7, y: 8 }])({});
    const b = task("b", ({ x, y, z }: { x: number; y: number; z: number }) => x * y + z);
    b.partial({ z: 100 }).expandKwargs(pairs);
  });
  const { state } = await simulate(d);
  assert.deepEqual(resultsOf(state, "add"), [3, 30]);
  assert.deepEqual(resultsOf(state, "b"), [112, 130, 156]);
  assert.equal(state.state, "success");
});

test("zip: tuples as long as the shortest input, or the longest with fillValue", async () => {
  const d = dag({ id: "zip" }, () => {
    const nums = task("nums", () => [1, 2, 3])({});
    const show = task("show", ({ pair }: { pair: unknown[] }) => pair.join(":"));
    show.expand({ pair: zip(nums, ["a", "b"]) });
    show.expand({ pair: zip(nums, ["a", "b"], { fillValue: "-" }) });
  });
  const { state } = await simulate(d);
  assert.deepEqual(resultsOf(state, "show"), ["1:a", "2:b"]);
  assert.deepEqual(resultsOf(state, "show__1"), ["1:a", "2:b", "3:-"]);
});

/** Compiles only when A and B are the same type. */
type Same<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false;
const sameType = <A, B>(proof: Same<A, B>) => assert.ok(proof);

test("zip and concat carry their inputs' item types: a transform over them is typed, and runs", async () => {
  const d = dag({ id: "typed" }, () => {
    const names = task("names", () => ["a", "b", "c"])({});
    const pairs = zip(names, [1, 2]);
    sameType<typeof pairs, Ref<[string, number][]>>(true);
    const filled = zip(names, [1, 2], { fillValue: null });
    sameType<typeof filled, Ref<[string | null, number | null][]>>(true);
    const joined = concat(names, [1]);
    sameType<typeof joined, Ref<(string | number)[]>>(true);
    // An object maps as its [key, value] entries.
    const scores = task("scores", (): Record<string, number> => ({ a: 1 }))({});
    const entries = zip(scores, names);
    sameType<typeof entries, Ref<[[string, number], string][]>>(true);
    // @ts-expect-error: a pair's first place is a string
    pairs.map(([n]) => n.toFixed());
    task("show", ({ s }: { s: string }) => s).expand({ s: pairs.map(([n, i]) => n.repeat(i)) });
  });
  assert.deepEqual(resultsOf((await simulate(d)).state, "show"), ["a", "bb"]);
});

test("out.map(fn) runs on the worker: the coordinator's work carries the raw item, the task gets the transform, the length is kept", async () => {
  let calls = 0;
  const d = dag({ id: "mapfn" }, () => {
    const files = task("files", () => ["a.csv", "b.txt", "c.csv"])({});
    const load = task("load", ({ name }: { name: string }) => name);
    load.expand({
      name: files.map((f: string) => {
        calls++;
        return f.toUpperCase();
      }),
    });
  });
  const { state, work } = await simulate(d);
  const loadWork = work.filter((w) => w.taskId === "load");
  assert.equal(loadWork.length, 3);
  assert.ok(loadWork.every((w) => w.transforms && w.args.name instanceof Deferred), "the coordinator never applies the transform");
  assert.deepEqual(loadWork.map((w) => (w.args.name as Deferred).input), ["a.csv", "b.txt", "c.csv"]);
  assert.deepEqual(resultsOf(state, "load"), ["A.CSV", "B.TXT", "C.CSV"]);
  assert.equal(calls, 3);
});

test("map then expandKwargs, and a chain of maps, apply in order", async () => {
  const d = dag({ id: "mapkw" }, () => {
    const n = task("n", () => [1, 2])({});
    add().expandKwargs(n.map((v: number) => ({ x: v, y: v * 10 })));
    collect()({ xs: n.map((v: number) => v + 1).map((v: number) => v * 2) });
  });
  const { state } = await simulate(d);
  assert.deepEqual(resultsOf(state, "add"), [11, 22]);
  assert.deepEqual(resultsOf(state, "collect"), [[4, 6]]);
});

test("concat: every item of each input in order", async () => {
  const d = dag({ id: "cat" }, () => {
    const a = task("a", () => [1, 2])({});
    const double = task("double", ({ v }: { v: number }) => v * 2);
    double.expand({ v: concat(a, [10], a.map((v: number) => v + 100)) });
  });
  const { state } = await simulate(d);
  assert.deepEqual(resultsOf(state, "double"), [2, 4, 20, 202, 204]);
});

test("objects map as [key, value] entries in insertion order; several kwargs give the cross product, first outermost", async () => {
  const d = dag({ id: "obj" }, () => {
    const cfg = task("cfg", () => ({ b: 1, a: 2 }))({});
    const show = task("show", ({ kv, s }: { kv: [string, number]; s: string }) => `${kv[0]}=${kv[1]}${s}`);
    show.expand({ kv: cfg, s: ["!", "?"] });
  });
  const { state } = await simulate(d);
  assert.deepEqual(resultsOf(state, "show"), ["b=1!", "b=1?", "a=2!", "a=2?"]);
});

test("mapped → mapped drops null results; a reduce gets results in map-index order whatever order they finished in", async () => {
  const d = dag({ id: "chain" }, () => {
    const first = task("first", ({ v }: { v: number }) => (v % 2 === 0 ? null : v)).expand({ v: [1, 2, 3, 4, 5] });
    const second = task("second", ({ v }: { v: number }) => v * 10).expand({ v: first });
    collect()({ xs: second });
  });
  const { state } = await simulate(d, { order: "reverse" });
  assert.deepEqual(state.tasks.second!.instances!.length, 3);
  assert.deepEqual(resultsOf(state, "collect"), [[10, 30, 50]]);
});

for (const [value, type] of [["text", "a string"], [42, "a number"], [null, "null"]] as const) {
  test(`an upstream returning ${type} cannot be mapped: the error names the task, the type and what mapping needs`, async () => {
    const d = dag({ id: "nomap" }, () => {
      const up = task("up", () => value)({});
      task("m", ({ v }: { v: unknown }) => v).expand({ v: up });
    });
    const { state } = await simulate(d);
    assert.equal(state.tasks.m!.state, "failed");
    assert.equal(state.tasks.m!.error!.message, `task 'm' cannot map over 'v': upstream task 'up' returned ${type}, but mapping needs a list (one instance per item) or an object (one per [key, value] entry)`);
    assert.equal(state.state, "failed");
  });
}

test("taskGroup.expand maps a sub-graph: ids <group>.<task>, one instance per group index, aligned chains, a reduce outside", async () => {
  const d = dag({ id: "grp" }, () => {
    const trained = taskGroup("per_model", ({ lr }: { lr: Ref<number> }) => {
      const fit = task("fit", ({ lr }: { lr: number }) => {
        if (lr === 0.2) throw new Error("diverged");
        return lr * 10;
      })({ lr });
      return task("score", ({ m }: { m: number }) => m + 1)({ m: fit });
    }).expand({ lr: [0.1, 0.2, 0.3] });
    collect()({ xs: trained });
  });
  assert.deepEqual(d.spec.tasks.map((t) => [t.id, t.group]), [["per_model.fit", "per_model"], ["per_model.score", "per_model"], ["collect", null]]);
  const { state } = await simulate(d);
  assert.deepEqual(state.tasks["per_model.fit"]!.instances!.map((i) => i.state), ["success", "failed", "success"]);
  assert.deepEqual(state.tasks["per_model.score"]!.instances!.map((i) => [i.state, i.result ?? null]), [["success", 2], ["upstream_failed", null], ["success", 4]]);
  assert.equal(state.tasks["per_model.score"]!.state, "upstream_failed");
  assert.equal(state.tasks.collect!.state, "upstream_failed");
});

test("a partial-failure-aware reduce runs on the results that exist and learns which map indexes failed", async () => {
  const d = dag({ id: "partial" }, () => {
    const tried = task("try", ({ v }: { v: number }) => {
      if (v === 2) throw new Error("bad");
      return v;
    }).expand({ v: [1, 2, 3] });
    task("report", ({ xs }: { xs: number[] }, ctx) => ({ xs, failed: ctx.upstreamStates!["try"]!.failedMapIndexes }), {
      triggerRule: "all_done", partialResults: true,
    })({ xs: tried });
  });
  const { state } = await simulate(d);
  assert.deepEqual(resultsOf(state, "report"), [{ xs: [1, 3], failed: [1] }]);
  assert.equal(state.state, "success", "the leaf succeeded, so the run does (Airflow's leaf rule)");
});

test("mapping inside a mapped group, and mapping over a mapped group's output", async () => {
  const d = dag({ id: "nested" }, () => {
    const sums = taskGroup("g", ({ xs }: { xs: Ref<number[]> }) => {
      const sq = task("sq", ({ v }: { v: number }) => v * v).expand({ v: xs });
      return task("sum", ({ vs }: { vs: number[] }) => vs.reduce((a, b) => a + b, 0))({ vs: sq });
    }).expand({ xs: [[1, 2], [], [3]] });
    task("half", ({ s }: { s: number }) => s / 2).expand({ s: sums });
  });
  const { state, events } = await simulate(d);
  const sq = state.tasks["g.sq"]!;
  assert.deepEqual(sq.groupCounts, [2, 0, 1]);
  assert.deepEqual(sq.instances!.map((i) => [i.group, i.result]), [[0, 1], [0, 4], [2, 9]]);
  // Group index 1 mapped over nothing: its sum is skipped there (an empty map skips downstream), not fed [].
  assert.deepEqual(state.tasks["g.sum"]!.instances!.map((i) => [i.state, i.result ?? null]), [["success", 5], ["skipped", null], ["success", 9]]);
  assert.equal(state.tasks["g.sum"]!.state, "success");
  assert.deepEqual(resultsOf(state, "half"), [2.5, 4.5]);
  assert.equal(events.filter((e) => e.type === "TaskExpanded" && e.taskId === "g.sq").length, 1);
});

test("the expansion of N instances is one event, and a map of 50,000 finishes", async () => {
  const d = dag({ id: "wide" }, () => {
    collect()({ xs: task("one", ({ v }: { v: number }) => v).expand({ v: Array.from({ length: 50_000 }, (_, i) => i) }) });
  });
  const { state, events } = await simulate(d);
  assert.deepEqual(events.filter((e) => e.type === "TaskExpanded").map((e) => (e as { count: number }).count), [50_000]);
  assert.equal((resultsOf(state, "collect")[0] as number[]).length, 50_000);
});

test("maxMapLength: per task, or the global setting; the error states the length and the limit", async () => {
  const perTask = dag({ id: "m1" }, () => {
    task("m", ({ v }: { v: number }) => v, { maxMapLength: 2 }).expand({ v: [1, 2, 3] });
  });
  const a = await simulate(perTask);
  assert.equal(a.state.tasks.m!.error!.message, "task 'm' would expand to 3 instances, over its maxMapLength of 2; raise the limit or narrow the task's input");
  const global = dag({ id: "m2" }, () => {
    task("m", ({ v }: { v: number }) => v).expand({ v: [1, 2, 3] });
  });
  const b = await simulate(global, { settings: { maxMapLength: 2 } });
  assert.match(b.state.tasks.m!.error!.message, /3 instances, over the global maxMapLength \(--max-map-length or MAPFLOW_MAX_MAP_LENGTH\) of 2/);
  const c = await simulate(global, { settings: { maxMapLength: 3 } });
  assert.equal(c.state.state, "success");
});

test("mapIndexLabel gives each instance a readable label, rendered from its arguments", async () => {
  const d = dag({ id: "label" }, () => {
    task("train", ({ lr }: { lr: number }) => lr, { mapIndexLabel: ({ lr }: { lr: number }) => `lr=${lr}` }).expand({ lr: [0.1, 0.01] });
  });
  const { state } = await simulate(d);
  assert.deepEqual(state.tasks.train!.instances!.map((i) => i.label), ["lr=0.1", "lr=0.01"]);
});

test("retries: the delay doubles per try with exponential backoff, up to maxRetryDelayMs", () => {
  const options = { ...DEFAULT_TASK_OPTIONS, retryDelayMs: 100, retryExponentialBackoff: true, maxRetryDelayMs: 350 };
  assert.deepEqual([2, 3, 4, 5].map((n) => retryDelay(options, n)), [100, 200, 350, 350]);
  assert.deepEqual([2, 3].map((n) => retryDelay({ ...options, retryExponentialBackoff: false }, n)), [100, 100]);
});

test("retries count per mapped instance; tryNumber starts at 1", async () => {
  const seen: string[] = [];
  const d = dag({ id: "retry" }, () => {
    task("flaky", ({ v }: { v: number }, ctx) => {
      seen.push(`${v}@${ctx.tryNumber}`);
      if (v === 1 && ctx.tryNumber < 3) throw new Error("not yet");
      return v;
    }, { retries: 2 }).expand({ v: [0, 1] });
  });
  const { state } = await simulate(d);
  assert.deepEqual(state.tasks.flaky!.instances!.map((i) => i.try), [1, 3]);
  assert.deepEqual(seen.sort(), ["0@1", "1@1", "1@2", "1@3"]);
});

test("a NonRetryableError fails its instance on the try that threw it, whatever its retries", async () => {
  const d = dag({ id: "noretry" }, () => {
    task("doomed", ({ v }: { v: number }) => {
      if (v === 1) throw new NonRetryableError("the input is gone");
      return v;
    }, { retries: 2 }).expand({ v: [0, 1] });
  });
  const { state } = await simulate(d);
  assert.deepEqual(state.tasks.doomed!.instances!.map((i) => [i.state, i.try, i.error?.name]), [["success", 1, undefined], ["failed", 1, "NonRetryableError"]]);
  assert.equal(state.tasks.doomed!.state, "failed");
});

test("a transform that throws NonRetryableError, or gives expandKwargs no object, fails its instance on the first try", async () => {
  const d = dag({ id: "badtransform" }, () => {
    const n = task("n", () => [1, 2])({});
    const pick = (v: number) => {
      if (v === 2) throw new NonRetryableError("item 2 is gone");
      return v;
    };
    task("show", ({ v }: { v: number }) => v, { retries: 2 }).expand({ v: n.map(pick) });
    add().partial({ retries: 2 }).expandKwargs(n.map((v: number) => (v === 1 ? [v] : { x: v, y: v })) as never);
  });
  const { state } = await simulate(d);
  const outcomes = (id: string) => state.tasks[id]!.instances!.map((i) => [i.state, i.try, i.error?.message ?? i.result]);
  assert.deepEqual(outcomes("show"), [["success", 1, 1], ["failed", 1, "item 2 is gone"]]);
  assert.deepEqual(outcomes("add"), [
    ["failed", 1, "task 'add' maps with expandKwargs, but its transform gave a list for map index 0; it must return an object of arguments"],
    ["success", 1, 4],
  ]);
});

test("trigger rules follow Airflow over success / failed / upstream_failed / skipped upstreams", () => {
  const cases: [string, string[], string][] = [
    ["all_success", ["success", "success"], "run"],
    ["all_success", ["success", "failed"], "upstream_failed"],
    ["all_success", ["running", "upstream_failed"], "upstream_failed"],
    ["all_success", ["success", "skipped"], "skipped"],
    ["all_success", ["success", "running"], "wait"],
    ["all_failed", ["failed", "upstream_failed"], "run"],
    ["all_failed", ["failed", "success"], "skipped"],
    ["all_done", ["failed", "skipped"], "run"],
    ["all_done", ["failed", "running"], "wait"],
    ["all_skipped", ["skipped", "skipped"], "run"],
    ["all_skipped", ["skipped", "success"], "skipped"],
    ["one_success", ["running", "success"], "run"],
    ["one_success", ["failed", "failed"], "upstream_failed"],
    ["one_success", ["skipped", "skipped"], "skipped"],
    ["one_failed", ["running", "failed"], "run"],
    ["one_failed", ["success", "success"], "skipped"],
    ["one_done", ["running", "failed"], "run"],
    ["one_done", ["skipped", "skipped"], "skipped"],
    ["none_failed", ["success", "skipped"], "run"],
    ["none_failed", ["success", "failed"], "upstream_failed"],
    ["none_failed_min_one_success", ["success", "skipped"], "run"],
    ["none_failed_min_one_success", ["skipped", "skipped"], "skipped"],
    ["none_failed_min_one_success", ["skipped", "upstream_failed"], "upstream_failed"],
    ["none_skipped", ["success", "failed"], "run"],
    ["none_skipped", ["success", "skipped"], "skipped"],
    ["always", ["running", "pending"], "run"],
  ];
  const covered = new Set(cases.map(([rule]) => rule));
  assert.deepEqual([...TRIGGER_RULES].filter((r) => !covered.has(r)), [], "every rule has a case");
  for (const [rule, upstream, want] of cases) {
    const v = triggerVerdict(rule as never, upstream as never);
    assert.equal(v.kind === "skip" ? v.state : v.kind, want, `${rule} over ${upstream.join(",")}`);
  }
});

test("a run is queued until its first decision, and its state follows its leaves", async () => {
  const d = dag({ id: "leaves" }, () => {
    const broken = task("broken", () => {
      throw new Error("no");
    })({});
    task("cleanup", () => "ok", { triggerRule: "all_done" }).after(broken);
  });
  const requested = fold([{ type: "RunRequested", runId: "R", dagId: "leaves", dagVersion: "v", spec: d.spec, conf: {}, at: 1 }])!;
  assert.equal(requested.state, "queued");
  assert.ok(decide(requested, 2).length > 0);
  const { state } = await simulate(d);
  assert.equal(state.tasks.broken!.state, "failed");
  assert.equal(state.state, "success", "the only leaf, cleanup, succeeded");
});

test("definition errors for the new inputs say what was wrong", () => {
  const rejects = (build: () => void, pattern: RegExp) =>
    assert.throws(() => dag({ id: "bad" }, build), (err: unknown) => err instanceof DagDefinitionError && pattern.test(err.message));
  rejects(() => add().expandKwargs([{ x: 1, retries: 2 }] as never), /task 'add': expandKwargs\(\) item 0 sets 'retries', a task option that cannot be mapped/);
  rejects(() => add().expandKwargs("nope" as never), /expandKwargs\(\) takes a list of argument objects/);
  rejects(() => add().expandKwargs([1] as never), /expandKwargs\(\) item 0 is not an object/);
  // The types ask for at least one input too; a caller without them still gets the error.
  rejects(() => (zip as (...inputs: unknown[]) => unknown)(), /zip\(\) needs at least one input/);
  rejects(() => concat(5 as never), /concat\(\) argument 1 is a number/);
  rejects(() => {
    let leaked: unknown;
    taskGroup("g", ({ v }) => {
      leaked = v;
      task("in", ({ v }: { v: unknown }) => v)({ v });
    }).expand({ v: [1] });
    task("out", ({ v }: { v: unknown }) => v)({ v: leaked });
  }, /task 'out': argument 'v' reads an argument of task group 'g' outside that group/);
  rejects(() => {
    taskGroup("outer", () => {
      taskGroup("inner", () => task("t", () => 1)({})).expand({ v: [1] });
    }).expand({ w: [1] });
  }, /task group 'outer.inner' is mapped inside mapped task group 'outer'/);
  rejects(() => task("t", () => 1, { mapIndexLabel: "x" as never }), /mapIndexLabel' must be a function/);
  assert.throws(() => zip([1]), /zip\(\) is used outside a dag/);
});

test("expandKwargs over an upstream's objects: an object that sets a task option fails the task at expansion", async () => {
  const d = dag({ id: "kwopt" }, () => {
    const pairs = task("pairs", () => [{ x: 1, y: 2 }, { x: 1, y: 2, queue: "gpu" }])({});
    add().expandKwargs(pairs);
  });
  const { state } = await simulate(d);
  assert.equal(state.tasks.add!.state, "failed");
  assert.equal(state.tasks.add!.error!.message, "task 'add': expandKwargs item 1 sets 'queue', a task option that cannot be mapped; set it in the task's options instead");
});

test("expandKwargs after partial(): an object that gives a partial() argument again fails the task (as in Airflow), at expansion or on the worker", async () => {
  const overUpstream = dag({ id: "kwdup" }, () => {
    const pairs = task("pairs", () => [{ x: 1 }, { x: 2, y: 3 }])({});
    add().partial({ y: 10 }).expandKwargs(pairs);
  });
  const expanded = (await simulate(overUpstream)).state.tasks.add!;
  assert.equal(expanded.state, "failed");
  assert.equal(expanded.error!.message, "task 'add': expandKwargs item 1 sets 'y', which partial() already gives; give each argument in one place");

  // Objects made by out.map(fn) exist only on the worker, so each instance is checked there.
  const overTransform = dag({ id: "kwdupmap" }, () => {
    const n = task("n", () => [1, 2])({});
    // Retries cannot mend it: each instance fails on its first try, as Airflow fails it at expansion.
    add().partial({ y: 10, retries: 2 }).expandKwargs(n.map((v: number) => ({ x: v, y: v })));
  });
  const instances = (await simulate(overTransform)).state.tasks.add!.instances!;
  assert.deepEqual(instances.map((i) => [i.state, i.try, i.error?.message]), [0, 1].map((i) => [
    "failed", 1, `task 'add' maps with expandKwargs, but its object for map index ${i} sets 'y', which partial() already gives; give each argument in one place`,
  ]));
});

test("a mapped group over an output that cannot be mapped fails its tasks with an error naming the group", async () => {
  const d = dag({ id: "badgroup" }, () => {
    const up = task("up", () => "text")({});
    taskGroup("g", ({ v }: { v: Ref<string> }) => {
      task("inner", ({ v }: { v: string }) => v)({ v });
    }).expand({ v: up });
  });
  const { state } = await simulate(d);
  assert.equal(state.tasks["g.inner"]!.state, "failed");
  assert.match(state.tasks["g.inner"]!.error!.message, /^task group 'g' cannot map over 'v': upstream task 'up' returned a string/);
});
