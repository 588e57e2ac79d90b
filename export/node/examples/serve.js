#!/usr/bin/env node
// A tiny HTTP endpoint for a kdedge bundle (node:http only).
//   node examples/serve.js BUNDLE_DIR [PORT]
//   curl -s localhost:8080/predict -d '{"texts": ["a gorgeous, witty film"]}'     (pair tasks: add "pairs")
import { createServer } from "node:http";

import { Classifier } from "../src/index.js";

if (process.argv.length < 3) {
  console.error("usage: node serve.js BUNDLE_DIR [PORT]");
  process.exit(2);
}
const classifier = await Classifier.load(process.argv[2]);
const port = Number(process.argv[3] ?? 8080);

function reply(res, status, payload) {
  res.writeHead(status, { "Content-Type": "application/json" });
  res.end(JSON.stringify(payload));
}

createServer(async (req, res) => {
  if (req.method !== "POST" || req.url !== "/predict") return reply(res, 404, { error: "POST to /predict" });
  let body = "";
  for await (const chunk of req) body += chunk;
  try {
    const { texts, pairs = null } = JSON.parse(body || "{}");
    if (texts === undefined) return reply(res, 400, { error: 'the body needs "texts": a string or a list of strings' });
    const predictions = await classifier.predict(texts, pairs);
    reply(res, 200, { predictions: Array.isArray(predictions) ? predictions : [predictions] });
  } catch (e) { // bad JSON, wrong types, a pair for a single-sentence model
    reply(res, 400, { error: e.message });
  }
}).listen(port, "127.0.0.1", () => console.log(`serving on http://127.0.0.1:${port}/predict`));
