// What predict() of one text costs over the model's own run: per bundle, interleaved, the p50 of session.run on a
// pre-built batch-1 feed, of the tokenizer's encode alone, and of predict(text) (tokenize + pad + run + decode),
// cycling through the file's sentences (a pair bundle gets each sentence as both texts).
//   node tools/overhead.js --data dev.tsv [--seconds 10] [--threads 1] [--core PATH/index.js] [--json] BUNDLE...
// --core times another copy of kdedge-runtime-core (its src/index.js), to compare two versions on one machine.
import { readFileSync } from "node:fs";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

import { Classifier } from "../src/index.js";

const { values: opts, positionals: bundles } = parseArgs({
  allowPositionals: true,
  options: {
    data: { type: "string" }, seconds: { type: "string", default: "10" }, threads: { type: "string", default: "1" },
    core: { type: "string" }, json: { type: "boolean", default: false },
  },
});
if (!opts.data || !bundles.length) {
  console.error("usage: node tools/overhead.js --data FILE.tsv [--seconds S] [--threads N] [--core INDEX.js] [--json] BUNDLE...");
  process.exit(2);
}

// column 0 of a TSV (a first line named "sentence" is a header)
const lines = readFileSync(opts.data, "utf8").split("\n").map((l) => l.replace(/\r$/, "")).filter((l) => l !== "");
const sentences = lines.map((l) => l.split("\t")[0]).filter((s, i) => !(i === 0 && s === "sentence"));

// The classifier class to time: the Node runtime's, or Classifier.load's reading of the folder on another core copy.
let Loader = Classifier;
if (opts.core) {
  const core = await import(pathToFileURL(path.resolve(opts.core)).href);
  Loader = class extends core.Classifier {};
  Loader.load = Classifier.load;
}

const p50 = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const results = [];
for (const bundle of bundles) {
  const classifier = await Loader.load(bundle, { intraOpNumThreads: Number(opts.threads) || undefined });
  const pair = classifier.isPair;
  const args = sentences.map((s) => (pair ? [s, s] : [s]));
  const feeds = args.map(([t, p]) => classifier.pad([classifier.encode(t, p ?? null)]));
  const tok = classifier.tokenizer;
  const run = [], encode = [], predict = [];
  // each call on a different sentence from the call before it (a third of the file apart), so that none of the three
  // finds the caches warm with its own text
  const third = Math.floor(args.length / 3);
  const step = async (i, keep) => {
    const [t, p] = args[(i + third) % args.length];
    let start = performance.now();
    await classifier.session.run(feeds[i % args.length], ["logits"]);
    const a = performance.now() - start;
    start = performance.now();
    if (pair) await classifier.predict(t, p); else await classifier.predict(t);
    const c = performance.now() - start;
    const [u, q] = args[(i + 2 * third) % args.length];
    start = performance.now();
    if (pair && classifier.pairEncoding === "joint") tok.encode(u, q); else { tok.encode(u); if (pair) tok.encode(q); }
    const b = performance.now() - start;
    if (keep) { run.push(a); encode.push(b); predict.push(c); }
  };
  for (let i = 0; i < Math.min(100, args.length); i++) await step(i, false);
  const until = performance.now() + 1000 * Number(opts.seconds);
  for (let i = 0; performance.now() < until; i++) await step(i, true);
  const r = { bundle, n: run.length, run_p50_ms: p50(run), encode_p50_ms: p50(encode), predict_p50_ms: p50(predict) };
  r.ratio = r.predict_p50_ms / r.run_p50_ms;
  r.overhead_p50_ms = r.predict_p50_ms - r.run_p50_ms;
  results.push(r);
  if (!opts.json) {
    console.log(`${path.basename(bundle).padEnd(16)} n=${String(r.n).padStart(5)}  run ${r.run_p50_ms.toFixed(4)} ms  ` +
      `encode ${r.encode_p50_ms.toFixed(4)} ms  predict ${r.predict_p50_ms.toFixed(4)} ms  ratio ${r.ratio.toFixed(3)}`);
  }
}
if (opts.json) process.stdout.write(JSON.stringify(results));
