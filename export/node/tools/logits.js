// For the cross-runtime tests: read {"texts": [...], "pairs": [...] | null, "batchSize": n} on stdin, print
// {"logits": [...]} or {"error": {"name", "message"}} (exit code 1) for the Python side to compare.
import { readFileSync } from "node:fs";

import { Classifier } from "../src/index.js";

const request = JSON.parse(readFileSync(0, "utf8"));
try {
  const classifier = await Classifier.load(process.argv[2]);
  const logits = await classifier.logits(request.texts, request.pairs ?? null, { batchSize: request.batchSize ?? 32 });
  const predictions = await classifier.predict(request.texts, request.pairs ?? null);
  process.stdout.write(JSON.stringify({ logits, labels: [].concat(predictions).map((p) => p.label) }));
} catch (e) {
  process.stdout.write(JSON.stringify({ error: { name: e.name, message: e.message } }));
  process.exitCode = 1;
}
