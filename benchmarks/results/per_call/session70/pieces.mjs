// Each piece of an n-gram bundle's one-text predict() in Node timed alone (session 70), cycling through the file's
// sentences (best of 30 passes): the tokenizer's ASCII word pass, its ids with and without rule 5 (scopes) and word
// bigrams, encode, the batch-1 feed, the model's run on a feed built beforehand, and predict() itself.
//   node benchmarks/results/per_call/session70/pieces.mjs SST-2/dev.tsv BUNDLE [CORE/src/index.js]
// Run from the repository root; export/node's packages are resolved from there. CORE: another copy of
// kdedge-runtime-core to time (placed under export/node, so that its packages resolve).
import { readFileSync } from "node:fs";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";

const root = process.cwd();
const { Classifier } = await import(pathToFileURL(path.join(root, "export/node/src/index.js")).href);
const [data, bundle, corePath] = process.argv.slice(2);
let Loader = Classifier;
if (corePath) {
  const core = await import(pathToFileURL(path.resolve(corePath)).href);
  Loader = class extends core.Classifier {};
  Loader.load = Classifier.load;
}
const texts = readFileSync(data, "utf8").split("\n").filter((l) => l).slice(1).map((l) => l.split("\t")[0]);
const c = await Loader.load(bundle, { intraOpNumThreads: 1 });
const tok = c.tokenizer;
const feeds = texts.map((t) => c.feedOf(t, null));

async function cycling(name, step) {
  let best = Infinity;
  for (let r = 0; r < 30; r++) {
    const t0 = performance.now();
    for (let i = 0; i < texts.length; i++) await step(texts[i], i);
    best = Math.min(best, ((performance.now() - t0) / texts.length) * 1000);
  }
  console.log(`  ${name.padEnd(30)} ${best.toFixed(2)} µs`);
}

console.log(`${path.basename(bundle)}, ${texts.length} sentences; µs a call, cycling through them:`);
await cycling("asciiWords (words, their ids)", (t) => tok.asciiWords(t));
const { scopes, rules } = tok;
tok.rules = { ...rules, word_ngrams: 1 };
tok.scopes = [];
await cycling("ids, words only", (t) => tok.ids(t));
tok.rules = rules;
await cycling("ids, words + bigrams", (t) => tok.ids(t));
tok.scopes = scopes;
await cycling("ids, all rules", (t) => tok.ids(t));
await cycling("encode", (t) => tok.encode(t));
await cycling("feedOf (a new buffer)", (t) => c.feedOf(t, null));
await cycling("session.run, feed built before", (t, i) => c.session.run(feeds[i], ["logits"]));
await cycling("predict", (t) => c.predict(t));
