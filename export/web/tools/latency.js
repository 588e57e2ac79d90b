#!/usr/bin/env node
// In-browser latency of one bundle, for benchmarks/runtime_latency.py: reads {"texts": [...], "warmup": n} on stdin
// and prints {"browser", "cold_start", "load_ms", "first_ms", "times_ms", "logits"} as the Node runtime's
// tools/latency.js does.
//   node tools/latency.js BUNDLE_DIR [--threads N] [--build wasm|webgpu] [--repeats 5] [--screenshot demo.png]
// Cold start: a fresh browser context opens tools/latency.html, which imports dist/, fetches and checks the bundle,
// and predicts once; the time is the page's own clock from navigation start to that first prediction (the server
// sends no-store, so every run fetches and compiles onnxruntime-web's WebAssembly again: a first visit). Per call:
// one predict() on one text (tokenize, run, decode) in the last page, after a warm-up.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

import { launch } from "./chromium.js";
import { serve } from "./serve.js";

const { values, positionals } = parseArgs({ allowPositionals: true, options: {
  threads: { type: "string" }, build: { type: "string", default: "wasm" }, repeats: { type: "string", default: "5" },
  screenshot: { type: "string" } } });
if (positionals.length !== 1) {
  console.error("usage: node tools/latency.js BUNDLE_DIR [--threads N] [--build wasm|webgpu] [--repeats 5] [--screenshot FILE]");
  process.exit(2);
}
const { texts, warmup = 20 } = JSON.parse(readFileSync(0, "utf8"));
const server = await serve({ bundles: { b: positionals[0] } });
const { browser, product } = await launch();
try {
  const query = new URLSearchParams({ bundle: "/bundles/b/", build: values.build, ...(values.threads ? { threads: values.threads } : {}) });
  const colds = [];
  let page;
  for (let i = 0; i < Number(values.repeats); i += 1) {
    await page?.context().close();
    page = await (await browser.newContext()).newPage();
    await page.goto(`${server.url}/tools/latency.html?${query}`);
    await page.waitForFunction(() => window.cold !== undefined, null, { timeout: 120000 });
    const cold = await page.evaluate(() => window.cold);
    if (cold.error) throw new Error(cold.error);
    colds.push(cold);
  }
  const { times, logits } = await page.evaluate(async ([texts, warmup]) => {
    for (let i = 0; i < warmup; i += 1) await window.classifier.predict(texts[i % texts.length]);
    const out = { times: [], logits: [] };
    for (const text of texts) {
      const start = performance.now();
      const prediction = await window.classifier.predict(text);
      out.times.push(performance.now() - start);
      out.logits.push(prediction.logits);
    }
    return out;
  }, [texts, warmup]);
  if (values.screenshot) {
    const demo = await browser.newPage({ viewport: { width: 900, height: 720 } });
    await demo.goto(`${server.url}/demo/?bundle=/bundles/b/&build=${values.build}`);
    await demo.waitForFunction(() => document.body.dataset.state === "loaded", null, { timeout: 120000 });
    await demo.fill("#text", "a gorgeous, witty, seductive movie");
    await demo.click("#classify");
    await demo.waitForFunction(() => document.body.dataset.state === "classified");
    await demo.screenshot({ path: values.screenshot, fullPage: true });
  }
  const sorted = colds.map((c) => c.page_to_first_prediction_ms).sort((a, b) => a - b);
  const median = (xs) => xs[Math.floor((xs.length - 1) / 2)] / 2 + xs[Math.ceil((xs.length - 1) / 2)] / 2;
  const last = colds[colds.length - 1];
  process.stdout.write(JSON.stringify({
    browser: product, build: values.build, threads: last.threads, cross_origin_isolated: last.isolated,
    cold_start: { median_ms: median(sorted), min_ms: sorted[0], runs: sorted.length,
      load_median_ms: median(colds.map((c) => c.load_ms).sort((a, b) => a - b)) },
    load_ms: last.load_ms, first_ms: last.first_call_ms, times_ms: times, logits }));
} finally {
  await browser.close();
  await server.close();
}
