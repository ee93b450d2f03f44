// Fan-out width decided at run time: one instance per file an upstream task finds.
// Try: npx mapflow run files_report --dags examples --conf '{"files": ["a.csv", "b.csv"]}'
import { dag, task, shell } from "mapflow";

export default dag({ id: "files_report" }, () => {
  const listFiles = task("list_files", (_: {}, ctx) =>
    (ctx.conf.files as string[] | undefined) ?? ["orders.csv", "users.csv", "events.csv"]);
  const load = task("load", ({ file }: { file: string }) => ({ file, rows: file.length }), { retries: 1 });
  const report = task("report", ({ loaded }: { loaded: { file: string; rows: number }[] }) =>
    loaded.map((l) => `${l.file}:${l.rows}`).join(", "));
  const done = report({ loaded: load.expand({ file: listFiles({}) }) });
  shell("notify", { triggerRule: "all_done" }).partial({ command: 'echo "report finished for $DAG"' }).expand({ DAG: ["files_report"] }).after(done);
});
