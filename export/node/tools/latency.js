// Per-call latency of the Node runtime: predict() on one text at a time (tokenize + run + decode), after a
// warm-up. Reads {"texts": [...], "warmup": n} on stdin; prints {"load_ms", "first_ms", "times_ms": [...], "logits": [...]}.
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";

import { Classifier } from "../src/index.js";

const { texts, warmup = 20 } = JSON.parse(readFileSync(0, "utf8"));
const t0 = performance.now();
const classifier = await Classifier.load(process.argv[2], { intraOpNumThreads: Number(process.argv[3] || 0) || undefined });
const loaded = performance.now();
await classifier.predict(texts[0]);
const first = performance.now();
for (let i = 0; i < warmup; i++) await classifier.predict(texts[i % texts.length]);
const times = [];
const logits = [];
for (const text of texts) {
  const start = performance.now();
  const prediction = await classifier.predict(text);
  times.push(performance.now() - start);
  logits.push(prediction.logits);
}
process.stdout.write(JSON.stringify({ load_ms: loaded - t0, first_ms: first - loaded, times_ms: times, logits }));
