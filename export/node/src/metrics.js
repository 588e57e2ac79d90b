// Task metrics for scoring a bundle on the device (the Python runtime's kdedge_runtime/metrics.py; a test holds
// the two equal). Labels and predictions are class ids, or scores for regression.
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;

export function accuracy(y, p) { return mean(y.map((v, i) => (v === p[i] ? 1 : 0))); }

export function f1(y, p, positive = 1) {
  let tp = 0, predicted = 0, actual = 0;
  y.forEach((v, i) => { tp += v === positive && p[i] === positive; predicted += p[i] === positive; actual += v === positive; });
  return predicted + actual ? (2 * tp) / (predicted + actual) : 0;
}

const classesOf = (y, p) => [...new Set([...y, ...p])].sort((a, b) => a - b);

export function macroF1(y, p) { return mean(classesOf(y, p).map((c) => f1(y, p, c))); }

export function matthewsCorrelation(y, p) {
  const classes = classesOf(y, p);
  const t = classes.map((c) => y.filter((v) => v === c).length);
  const q = classes.map((c) => p.filter((v) => v === c).length);
  const n = y.length;
  const correct = y.filter((v, i) => v === p[i]).length;
  const dot = (a, b) => a.reduce((s, v, i) => s + v * b[i], 0);
  const denominator = Math.sqrt((n * n - dot(q, q)) * (n * n - dot(t, t)));
  return denominator ? (correct * n - dot(t, q)) / denominator : 0;
}

function std(xs) { const m = mean(xs); return Math.sqrt(mean(xs.map((v) => (v - m) ** 2))); }

export function pearson(y, p) {
  if (std(p) === 0 || std(y) === 0) return 0;
  const my = mean(y), mp = mean(p);
  let num = 0, sy = 0, sp = 0;
  y.forEach((v, i) => { num += (v - my) * (p[i] - mp); sy += (v - my) ** 2; sp += (p[i] - mp) ** 2; });
  return num / Math.sqrt(sy * sp);
}

// 1-based ranks, ties given their average rank.
function ranks(xs) {
  const order = xs.map((v, i) => i).sort((i, j) => xs[i] - xs[j] || i - j);
  const out = new Array(xs.length);
  for (let start = 0; start < order.length;) {
    let end = start;
    while (end + 1 < order.length && xs[order[end + 1]] === xs[order[start]]) end += 1;
    for (let k = start; k <= end; k += 1) out[order[k]] = (start + end) / 2 + 1;
    start = end + 1;
  }
  return out;
}

export function spearmanr(y, p) { return pearson(ranks(y), ranks(p)); }

export const METRICS = {
  accuracy, f1, macro_f1: macroF1, matthews_correlation: matthewsCorrelation, pearson, spearmanr,
};

// The named metrics of a model's logits (rows of numbers) against the labels.
export function score(metrics, logits, labels, regression) {
  const predictions = logits.map((row) => (regression ? row[0] : row.indexOf(Math.max(...row))));
  const unknown = metrics.filter((m) => !(m in METRICS));
  if (unknown.length) throw new Error(`unknown metric(s) ${unknown.join(", ")} (known: ${Object.keys(METRICS).join(", ")})`);
  return Object.fromEntries(metrics.map((m) => [m, METRICS[m](labels, predictions)]));
}
