// One model per customer: the customer list is read at run time, so customers added to it get a model in
// the next run with no change to this file, and customers dropped from it keep their past runs and
// results (the log and the UI keep every run). Each instance is labelled with its customer's id.
//   npx mapflow run per_customer --dags examples
//   npx mapflow run per_customer --dags examples --conf '{"customers": "/data/customers.json"}'
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { parse } from "csv-parse/sync";
import { SimpleLinearRegression } from "ml-regression-simple-linear";
import { dag, task } from "mapflow";

type Customer = { id: string; name: string };
type Model = { customer: string; months: number; trendPerMonth: number; r2: number; forecastNextMonth: number };

export default dag({
  id: "per_customer",
  description: "Fit a sales trend per customer of a list read at run time, and rank the forecasts",
  params: { customers: "examples/data/customers.json", sales: "examples/data/sales.csv" },
}, () => {
  const customers = task("list_customers", (_: {}, ctx): Customer[] => {
    const list = JSON.parse(readFileSync(resolve(String(ctx.conf.customers)), "utf8")) as Customer[];
    if (!Array.isArray(list) || list.some((c) => typeof c?.id !== "string")) throw new Error(`${ctx.conf.customers} must be a JSON list of { "id": …, "name": … }`);
    return list;
  })({});

  const train = task("train", ({ customer }: { customer: Customer }, ctx): Model => {
    const rows = (parse(readFileSync(resolve(String(ctx.conf.sales)), "utf8"), { columns: true, trim: true }) as { customer: string; month: string; amount: string }[])
      .filter((r) => r.customer === customer.id);
    if (rows.length < 3) throw new Error(`customer '${customer.id}' has ${rows.length} months of sales; a trend needs at least 3`);
    const x = rows.map((_, i) => i + 1);
    const y = rows.map((r) => Number(r.amount));
    const model = new SimpleLinearRegression(x, y);
    const { r2 } = model.score(x, y);
    ctx.log.info({ customer: customer.id, months: rows.length }, "fitted");
    return {
      customer: customer.id, months: rows.length, trendPerMonth: Number(model.slope.toFixed(2)), r2: Number(r2.toFixed(3)),
      forecastNextMonth: Number(model.predict(rows.length + 1).toFixed(2)),
    };
  }, { mapIndexLabel: ({ customer }: { customer: Customer }) => customer.id }).expand({ customer: customers });

  task("rank", ({ models }: { models: Model[] }) =>
    [...models].sort((a, b) => b.forecastNextMonth - a.forecastNextMonth).map((m) => `${m.customer}: ${m.forecastNextMonth} (${m.trendPerMonth >= 0 ? "+" : ""}${m.trendPerMonth}/month)`),
  )({ models: train });
});
