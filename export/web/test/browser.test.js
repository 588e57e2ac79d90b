// kdedge-web in a real browser: headless Chromium loads the built runtime from a local server and must give the
// Python runtime's logits on the fixtures' bundles (test/fixtures.py), refuse bad bundles with the Node runtime's
// errors, and drive the demo page. Skipped without Chromium unless KDEDGE_REQUIRE_BROWSER is set (CI sets it).
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { MISSING, findChromium, launch } from "../tools/chromium.js";
import { ROOT, serve } from "../tools/serve.js";

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), ".fixtures");
const FP32_ATOL = 1e-4;
const found = findChromium();
if (!found && process.env.KDEDGE_REQUIRE_BROWSER) throw new Error(`KDEDGE_REQUIRE_BROWSER is set but ${MISSING}`);
if (!existsSync(path.join(FIXTURES, "stamp"))) throw new Error(`${FIXTURES} is missing: run \`npm test\` (its pretest builds them)`);

const expected = (c) => JSON.parse(readFileSync(path.join(FIXTURES, c, "expected.json"), "utf8"));
const url = (c) => `/test/.fixtures/${c}/bundle`;
const maxDiff = (a, b) => Math.max(...a.flatMap((row, i) => row.map((v, j) => Math.abs(v - b[i][j]))));

describe("kdedge-web in headless Chromium", { skip: found ? false : MISSING }, () => {
  let server, browser, page, bad;
  const open = async (query = "") => {
    const p = await browser.newPage();
    p.on("pageerror", (e) => console.error(`page error: ${e.message}`));
    await p.goto(`${server.url}/test/page.html${query}`);
    await p.waitForFunction(() => window.kdedgeReady === true);
    return p;
  };
  // Classifier.load + logits in the page; an error comes back as {name, message}.
  const logitsIn = (p, bundle, { texts, pairs, batch_size: batchSize }, options = {}) => p.evaluate(
    async ([bundle, texts, pairs, batchSize, options]) => {
      try {
        const clf = await window.kdedge.Classifier.load(bundle, options);
        return { logits: await clf.logits(texts, pairs, { batchSize }),
          labels: (await clf.predict(texts, pairs, { batchSize })).map((p) => p.label) };
      } catch (e) {
        return { error: { name: e.name, message: e.message } };
      }
    }, [bundle, texts, pairs, batchSize, options]);

  before(async () => {
    bad = mkdtempSync(path.join(os.tmpdir(), "kdedge-web-bad-"));
    server = await serve({ bundles: { bad: bad } });
    const launched = await launch();
    browser = launched.browser;
    console.log(`# browser: ${launched.product}`);
    page = await open();
  });
  after(async () => {
    await browser?.close();
    await server?.close();
    rmSync(bad, { recursive: true, force: true });
  });

  for (const c of ["sst2-tinybert", "sst2-bilstm", "stsb-tinybert", "stsb-bilstm"]) {
    test(`${c}: the Python runtime's fp32 logits within ${FP32_ATOL}`, async (t) => {
      const want = expected(c);
      const got = await logitsIn(page, url(c), want);
      assert.equal(got.error, undefined, JSON.stringify(got.error));
      assert.equal(got.logits.length, want.texts.length);
      const diff = maxDiff(got.logits, want.logits);
      t.diagnostic(`${want.texts.length} rows (${want.pairs ? "pairs, " : ""}empty and over-long text included), max |diff| ${diff.toExponential(2)}`);
      assert.ok(diff < FP32_ATOL, `max |logit difference| ${diff}`);
      assert.deepEqual(got.labels, want.labels);
    });
  }

  test("int8: the same batches give the Python runtime's labels, logits close", async (t) => {
    // Dynamic int8 kernels differ between WebAssembly and x86 (rounding, and u8 x s8 saturation on AVX2), so int8
    // logits agree closely rather than to fp32 precision.
    const want = expected("sst2-tinybert-int8");
    const got = await logitsIn(page, url("sst2-tinybert-int8"), want);
    assert.equal(got.error, undefined, JSON.stringify(got.error));
    const diff = maxDiff(got.logits, want.logits);
    const agree = got.labels.filter((l, i) => l === want.labels[i]).length / want.labels.length;
    t.diagnostic(`max |diff| ${diff.toExponential(2)}, labels agree on ${(agree * 100).toFixed(1)}%`);
    assert.ok(diff < 0.05, `max |logit difference| ${diff}`);
    assert.ok(agree >= 0.99, `labels agree on ${agree}`);
  });

  test("threads on a cross-origin isolated page give the same logits", async () => {
    const want = expected("sst2-bilstm");
    const threaded = await open();
    assert.equal(await threaded.evaluate(() => globalThis.crossOriginIsolated), true);
    const got = await logitsIn(threaded, url("sst2-bilstm"), want, { numThreads: 2 });
    assert.equal(got.error, undefined, JSON.stringify(got.error));
    assert.ok(maxDiff(got.logits, want.logits) < FP32_ATOL);
    await threaded.close();
  });

  test("the WebGPU build runs (on WebAssembly where the browser has no GPU) with the same logits", async (t) => {
    const want = expected("stsb-tinybert");
    const gpuPage = await open("?build=webgpu");
    t.diagnostic(`WebGPU adapter: ${await gpuPage.evaluate(async () => Boolean(await navigator.gpu?.requestAdapter()))}`);
    const got = await logitsIn(gpuPage, url("stsb-tinybert"), want);
    assert.equal(got.error, undefined, JSON.stringify(got.error));
    assert.ok(maxDiff(got.logits, want.logits) < FP32_ATOL);
    await gpuPage.close();
  });

  test("bad inputs: the Node runtime's errors", async () => {
    const errors = await page.evaluate(async (bundle) => {
      const clf = await window.kdedge.Classifier.load(bundle);
      const out = [];
      for (const [texts, pairs] of [[123, null], [["ok", 1, null], null], [["a"], ["b"]]]) {
        try { await clf.predict(texts, pairs); out.push(null); } catch (e) { out.push(`${e.name}: ${e.message}`); }
      }
      return out;
    }, url("sst2-bilstm"));
    assert.deepEqual(errors, ["TypeError: texts must be a string or an array of strings, not number",
      "TypeError: texts must contain only strings; found null, number",
      "Error: this bundle's task (sst2) classifies single sentences: drop pairs"]);
  });

  test("the demo page loads a bundle and shows the Python runtime's label and score", async () => {
    const want = expected("sst2-tinybert");
    const demo = await browser.newPage();
    await demo.goto(`${server.url}/demo/?bundle=${url("sst2-tinybert")}/`);
    await demo.waitForFunction(() => document.body.dataset.state === "loaded", null, { timeout: 30000 });
    for (const i of [0, 1, want.texts.length - 4]) { // two dev sentences and the over-long text
      await demo.fill("#text", want.texts[i]);
      await demo.click("#classify");
      await demo.waitForFunction(() => document.body.dataset.state === "classified");
      assert.equal(await demo.textContent("#label"), want.labels[i]);
      const [a, b] = want.logits[i];
      const score = 100 / (1 + Math.exp(-Math.abs(a - b)));
      assert.equal(await demo.textContent("#score"), `${score.toFixed(1)} %`);
      await demo.evaluate(() => { document.body.dataset.state = "loaded"; });
    }
    await demo.goto(`${server.url}/demo/?bundle=/bundles/nowhere/`);
    await demo.waitForFunction(() => document.body.dataset.state === "error");
    assert.equal(await demo.textContent("#status"),
      "BundleError: /bundles/nowhere is not a complete kdedge bundle: manifest.json missing");
    await demo.close();
  });

  // Each case: a copy of a good bundle, broken one way; the message must be the Node runtime's (paths as URLs).
  const good = () => path.join(FIXTURES, "sst2-bilstm", "bundle");
  const editManifest = (edit) => (dir) => {
    const file = path.join(dir, "manifest.json");
    const manifest = JSON.parse(readFileSync(file, "utf8"));
    edit(manifest);
    writeFileSync(file, JSON.stringify(manifest));
  };
  const BROKEN = {
    "no-model": [(dir) => rmSync(path.join(dir, "model.onnx")), "/bundles/bad/no-model is not a complete kdedge bundle: model.onnx missing"],
    "no-manifest": [(dir) => rmSync(path.join(dir, "manifest.json")), "/bundles/bad/no-manifest is not a complete kdedge bundle: manifest.json missing"],
    "not-json": [(dir) => writeFileSync(path.join(dir, "manifest.json"), "{ nope"), "/bundles/bad/not-json/manifest.json is not valid JSON ("],
    "wrong-sha": [editManifest((m) => { m.files["model.onnx"].sha256 = "0".repeat(64); }), "/bundles/bad/wrong-sha/model.onnx does not match its manifest (sha256 "],
    "bad-field": [editManifest((m) => { m.max_length = "long"; }), "/bundles/bad/bad-field/manifest.json: field 'max_length' must be a positive integer, not \"long\""],
    "escape": [editManifest((m) => { m.tokenizer.file = "../../../test/page.html"; }), "/bundles/bad/escape/manifest.json: field 'tokenizer.file' points outside the bundle (../../../test/page.html)"],
    "escape-encoded": [editManifest((m) => { m.tokenizer.file = "%2e%2e/no-model/tokenizer.json"; }), "/bundles/bad/escape-encoded/manifest.json: field 'tokenizer.file' points outside the bundle (%2e%2e/no-model/tokenizer.json)"],
    "escape-slash": [editManifest((m) => { m.tokenizer.file = "..%2f..%2ftest%2fpage.html"; }), "/bundles/bad/escape-slash/manifest.json: field 'tokenizer.file' points outside the bundle (..%2f..%2ftest%2fpage.html)"],
    "bad-tokenizer": [(dir) => writeFileSync(path.join(dir, "tokenizer.json"), "[]"), "/bundles/bad/bad-tokenizer/tokenizer.json is not a valid tokenizer ("],
    "bad-model": [(dir) => {
      writeFileSync(path.join(dir, "model.onnx"), "not onnx");
      editManifest((m) => { m.files["model.onnx"].sha256 = createHash("sha256").update("not onnx").digest("hex"); })(dir);
    }, "/bundles/bad/bad-model/model.onnx is not a model ONNX Runtime can load ("],
  };

  test("bad bundles: one BundleError each, in the Node runtime's words", async () => {
    // The Node runtime, where export/node is installed (CI installs it first), loads the same folders.
    const nodeDir = path.join(ROOT, "..", "node");
    const node = existsSync(path.join(nodeDir, "node_modules", "onnxruntime-node"))
      ? await import(path.join(nodeDir, "src", "index.js")) : null;
    for (const [name, [breakIt, message]] of Object.entries(BROKEN)) {
      const dir = path.join(bad, name);
      cpSync(good(), dir, { recursive: true });
      breakIt(dir);
      const got = await logitsIn(page, `/bundles/bad/${name}`, { texts: ["x"], pairs: null, batch_size: 1 });
      assert.equal(got.error?.name, "BundleError", `${name}: ${JSON.stringify(got)}`);
      if (message) assert.ok(got.error.message.startsWith(message), `${name}: ${got.error.message}`);
      if (node) { // the Node runtime on the same folder: the same message, with the folder's path for its URL
        const nodeMessage = await node.Classifier.load(dir).then(() => null, (e) => e.message);
        assert.ok(nodeMessage, `${name}: the Node runtime loaded it`);
        if (!name.startsWith("escape-")) { // on disk %2e%2e and %2f are names, not parents: Node reports them missing
          assert.equal(got.error.message.split(" (")[0], nodeMessage.replaceAll(dir, `/bundles/bad/${name}`).split(" (")[0], name);
        }
      }
    }
  });
});
