// The authoring SDK compiles DAGs to a serialisable spec and rejects bad definitions clearly.
import { test } from "node:test";
import assert from "node:assert/strict";
import { dag, task, shell } from "../libs/sdk/index.ts";
import { DagDefinitionError } from "../libs/errors.ts";

const add = () => task("add", ({ x, y }: { x: number; y: number }) => x + y);

test("the seed DAG compiles: a mapped task feeding a reduce", () => {
  const d = dag({ id: "seed" }, () => {
    const printX = task("print_x", ({ x }: { x: number[] }) => x);
    printX({ x: add().expand({ x: [2, 4, 8], y: [5, 10] }) });
  });
  assert.deepEqual(d.spec.tasks.map((t) => [t.id, t.mapping !== null, t.upstream]), [["add", true, []], ["print_x", false, ["add"]]]);
  assert.deepEqual(d.spec.tasks[1]!.args, { x: { kind: "output", task: "add" } });
  assert.deepEqual(JSON.parse(JSON.stringify(d.spec)), d.spec, "the spec survives JSON");
});

test("partial holds arguments constant and may set options; after() adds an ordering edge", () => {
  const d = dag({ id: "p" }, () => {
    const a = add();
    const mapped = a.partial({ y: 10, retries: 2 }).expand({ x: [1, 2] });
    task("cleanup", () => "done", { triggerRule: "all_done" }).after(mapped);
  });
  const [addSpec, cleanup] = d.spec.tasks;
  assert.deepEqual(addSpec!.args, { y: { kind: "literal", value: 10 } });
  assert.equal(addSpec!.options.retries, 2);
  assert.deepEqual(cleanup!.upstream, ["add"]);
  assert.equal(cleanup!.options.triggerRule, "all_done");
});

test("a definition called twice gets a suffixed id, as in Airflow", () => {
  const d = dag({ id: "twice" }, () => {
    const a = add();
    a({ x: 1, y: 2 });
    a({ x: 3, y: 4 });
  });
  assert.deepEqual(d.spec.tasks.map((t) => t.id), ["add", "add__1"]);
});

function rejects(build: () => void, pattern: RegExp) {
  assert.throws(() => dag({ id: "bad" }, build), (err: unknown) => err instanceof DagDefinitionError && pattern.test(err.message));
}

test("definition errors name the task and say what to do", () => {
  rejects(() => add().expand({ queue: ["a", "b"] } as never), /task 'add': 'queue' is a task option and cannot be mapped/);
  rejects(() => add().expand({ x: 5 } as never), /task 'add': expand\(\) argument 'x' is a number; mapping needs a list/);
  rejects(() => add().expand({}), /expand\(\) needs at least one argument/);
  rejects(() => {
    task("same", () => 1)({});
    task("same", () => 2)({});
  }, /task id 'same' is used by two different tasks/);
  rejects(() => add().partial({ x: 1 }).expand({ x: [1] }), /'x' is given to both partial\(\) and expand\(\)/);
  rejects(() => add().partial({ x: 1 }).expandKwargs([{ y: 2 }, { x: 3, y: 4 }]), /task 'add': expandKwargs\(\) item 1 sets 'x', which partial\(\) already gives; give each argument in one place/);
  rejects(() => task("t", () => 1, { triggerRule: "sometimes" as never })({}), /unknown triggerRule 'sometimes'; use one of all_success, all_failed/);
});

test("a misspelt or unknown task option is an error, not an option silently dropped", () => {
  assert.throws(() => task("t", () => 1, { retry_delay: 5 } as never), /task 't': unknown option 'retry_delay'; the options are retries, retryDelayMs/);
  assert.throws(() => shell("s", { timeout: 1000 } as never), /task 's': unknown option 'timeout'/);
  assert.throws(() => task("t", () => 1, { pool: "gpu" } as never), /mapflow has no pools: limit a task's instances at once with 'maxActive'/);
  // partial() takes option names among its arguments; one that is no option of mapflow's is refused too.
  rejects(() => task("p", ({ x }: { x: number }) => x).partial({ pool: "gpu" } as never).expand({ x: [1] }), /task 'p': mapflow has no pools/);
  rejects(() => task("p", ({ x }: { x: number }) => x).partial({ task_id: "q" } as never).expand({ x: [1] }), /a task's id is the first argument of task\(\)/);
});

test("an output of another DAG is an unknown upstream", () => {
  let foreign: unknown;
  dag({ id: "other" }, () => {
    foreign = task("src", () => [1])({});
  });
  rejects(() => task("use", ({ v }: { v: unknown }) => v)({ v: foreign }), /refers to task 'src', which is not in DAG 'bad'/);
});

test("a cycle through after() is an error naming its tasks", () => {
  rejects(() => {
    const a = task("a", () => 1)({});
    const b = task("b", () => 2).after(a);
    a.after(b);
  }, /has a cycle: (a → b → a|b → a → b)/);
});

test("ids that could act as subject wildcards are refused", () => {
  assert.throws(() => task("a.b", () => 1), /task id "a.b" is not valid/);
  assert.throws(() => task("a*", () => 1), /not valid/);
  assert.throws(() => dag({ id: "x y" }, () => {}), /DAG id "x y" is not valid/);
});

test("task calls outside dag() are an error", () => {
  assert.throws(() => add()({ x: 1, y: 2 }), /used outside a dag/);
});

test("shell tasks compile with the shell operator and keep env and secretEnv out of the spec", () => {
  const d = dag({ id: "sh" }, () => {
    shell("bash", { env: { REGION: "eu-west-1" }, secretEnv: ["API_KEY"] }).expand({ command: ["echo 1", "echo 2"] });
  });
  assert.equal(d.spec.tasks[0]!.operator, "shell");
  assert.doesNotMatch(JSON.stringify(d.spec), /eu-west-1|API_KEY/);
  assert.deepEqual(d.operators.get("bash"), { kind: "shell", env: { REGION: "eu-west-1" }, secretEnv: ["API_KEY"] });
});
