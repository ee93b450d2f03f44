// The article's example DAG: a cross product of two mapped kwargs (6 instances), then a reduce.
// Run it: npx mapflow run sample_repeated_mapping --dags examples
import { dag, task } from "mapflow";

export default dag({ id: "sample_repeated_mapping", startDate: "2022-06-04", catchup: false }, () => {
  const add = task("add", ({ x, y }: { x: number; y: number }) => x + y);
  const printX = task("print_x", ({ x }: { x: number[] }, ctx) => {
    ctx.log.info({ x }, "reduce received the mapped results");
    return x;
  });
  const added = add.expand({ x: [2, 4, 8], y: [5, 10] }); // add [6]
  printX({ x: added }); // [7, 12, 9, 14, 13, 18]
});
