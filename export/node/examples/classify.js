#!/usr/bin/env node
// Classify lines from stdin with a kdedge bundle; one JSON object per line on stdout.
//   node examples/classify.js BUNDLE_DIR < sentences.txt
//   printf 'A man is playing.\tSomeone plays.\n' | node examples/classify.js STSB_BUNDLE   (pairs: tab-separated)
import { readFileSync } from "node:fs";

import { Classifier } from "../src/index.js";

if (process.argv.length !== 3) {
  console.error("usage: node classify.js BUNDLE_DIR < lines.txt");
  process.exit(2);
}
const classifier = await Classifier.load(process.argv[2]);
const input = readFileSync(0, "utf8");
const lines = input.length ? input.replace(/\n$/, "").split("\n") : [];
let predictions;
if (classifier.isPair) {
  const halves = lines.map((line) => (line.includes("\t") ? line.split(/\t(.*)/s).slice(0, 2) : [line, ""]));
  predictions = await classifier.predict(halves.map((h) => h[0]), halves.map((h) => h[1]));
} else {
  predictions = await classifier.predict(lines);
}
lines.forEach((text, i) => console.log(JSON.stringify({ text, label: predictions[i].label, score: predictions[i].score })));
