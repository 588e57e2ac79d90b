// Fuzz tests of what the JavaScript runtimes read from untrusted hands (issue 48): a bundle's manifest.json and
// tokenizer.json as kdedge-runtime-core parses them (so Node and the browser), the bundle folder as the Node runtime
// reads it, the bundle URL as the browser runtime fetches it (export/web/src/load.js, run here on onnxruntime-node with
// a fetch that serves the folder), the texts a loaded classifier is given, and the Node example server's HTTP handling.
// Each case mutates a real bundle (the browser tests' fixtures: export/web/test/fixtures.py, built here if missing)
// with a seeded generator: truncation, flipped bytes, dropped or retyped fields, deep nesting, huge numbers, invalid
// UTF-8, lone surrogates, NUL bytes, path tricks, links out of the folder.
// The property: a BundleError whose message is one line, or a correct result; never another exception, a crash, a
// hang (each case is timed) or a file read outside the bundle folder. `npm test` runs a few hundred cases in seconds;
//   KDEDGE_FUZZ_CASES=5000 KDEDGE_FUZZ_SEED=7 node --test test/fuzz.test.js   (from export/node) runs each target
// for 5000 cases, KDEDGE_FUZZ_SECONDS=1800 for 30 minutes each (--test-name-pattern=... picks
// targets); KDEDGE_FUZZ_CASE=N replays one case; KDEDGE_FUZZ_BUNDLES=dir1:dir2 fuzzes other bundles.
// On the same bundles, not fuzz: predict() of one text (its direct batch-1 feed) against the batched path.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import * as nodeModule from "node:module";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";

import { BundleError, BundleTokenizer, parseManifest } from "kdedge-runtime-core";
import * as ort from "onnxruntime-node";

import { Classifier } from "../src/index.js";

const NODE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const ROOT = path.resolve(NODE_DIR, "..", "..");
const SEED = Number(process.env.KDEDGE_FUZZ_SEED ?? 48);
const SCALE = process.env.KDEDGE_FUZZ_CASES ? Number(process.env.KDEDGE_FUZZ_CASES) : null;
const ONLY = process.env.KDEDGE_FUZZ_CASE === undefined ? null : Number(process.env.KDEDGE_FUZZ_CASE);
const SECONDS = Number(process.env.KDEDGE_FUZZ_SECONDS ?? 0);
const CASE_LIMIT_MS = 10_000; // a case slower than this is a hang

// ---- the seeded generator -------------------------------------------------------------------------------------
function random(seed) { // mulberry32: small, fast, and the same sequence on every platform
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n) => Math.floor(next() * n);
  return { next, int, pick: (xs) => xs[int(xs.length)], chance: (p) => next() < p };
}
const hash = (s) => [...s].reduce((h, c) => Math.imul(h ^ c.charCodeAt(0), 16777619) >>> 0, 2166136261);

// Runs `count` cases of `target` (KDEDGE_FUZZ_CASES overrides the count; KDEDGE_FUZZ_SECONDS runs cases until that
// many seconds are spent on the target, as benchmarks/fuzz.sh does for Python), each with its own generator, so a
// failure names the seed and case that replay it.
async function fuzz(target, count, runCase) {
  const deadline = SECONDS ? performance.now() + SECONDS * 1000 : Infinity;
  const cases = ONLY !== null ? [ONLY] : SECONDS ? naturals() : Array.from({ length: SCALE ?? count }, (_, i) => i);
  let slowest = 0;
  let tried = 0;
  for (const i of cases) {
    if (performance.now() >= deadline) break;
    tried++;
    const r = random(hash(target) ^ Math.imul(SEED, 0x9e3779b1) ^ Math.imul(i + 1, 0x85ebca6b));
    const started = performance.now();
    try {
      await runCase(r, i);
    } catch (e) {
      e.message = `${target}, case ${i} (replay: KDEDGE_FUZZ_SEED=${SEED} KDEDGE_FUZZ_CASE=${i}): ${e.message}`;
      throw e;
    } finally { // each case's bundle copies go with it: a 10-minute target wrote 4 GB of them
      for (const entry of fs.readdirSync(SCRATCH)) fs.rmSync(path.join(SCRATCH, entry), { recursive: true, force: true });
    }
    const took = performance.now() - started;
    slowest = Math.max(slowest, took);
    assert.ok(took < CASE_LIMIT_MS, `${target}, case ${i} (KDEDGE_FUZZ_SEED=${SEED}) took ${Math.round(took)} ms`);
  }
  return { cases: tried, slowestMs: Math.round(slowest) };
}

function* naturals() {
  for (let i = 0; ; i++) yield i;
}

const PATH_TRICKS = ["../tokenizer.json", "../outside.json", "../../../../../../etc/passwd", "/etc/passwd",
  "..\\tokenizer.json", "C:\\Windows\\win.ini", "c:tokenizer.json", "%2e%2e/outside.json", "..%2foutside.json",
  "tokenizer.json?x=1", "tokenizer.json#x", "./tokenizer.json", "sub/../tokenizer.json", "tokenizer.json/", ".", "..",
  "", "tokenizer.json\u0000.txt", "tokenizer.json\n", " tokenizer.json", "file:///etc/passwd",
  "http://example.com/t.json", "//example.com/t.json", "model.onnx", "manifest.json", "bundle/../../outside.json",
  "\u2025/outside.json", "．．/outside.json", "tokenizer.json".repeat(2000)];
const STRINGS = ["", " ", "\u0000", "a\u0000b", "\ud800", "\udfff tail", "\ufeff", "\u202e\u0301", "💥".repeat(300),
  "x".repeat(100_000), "__proto__", "constructor", "toString", "kdedge-bundle/2", "kdedge-bundle/1 ", "joint",
  "separate", "input_ids", "logits", "[UNK]", "WordPiece", "WordLevel", "BPE", "TemplateProcessing", "BertProcessing",
  "RobertaProcessing", "BertNormalizer", "Sequence", "NFC", ...PATH_TRICKS];
const NUMBERS = [0, -0, -1, 1, 2, 3, 0.5, 1.5, 2 ** 31 - 1, 2 ** 31, 2 ** 32, 2 ** 53, 2 ** 53 + 2, 1e21, 1e308,
  -1e308, 5e-324, Number.MAX_SAFE_INTEGER, -(2 ** 31)];
const NUMBER_TEXTS = ["1e999", "-1e999", `1${"0".repeat(400)}`, "1.0", "1e2", "0.5e1", "-0", "1E+2", "2.0000000000000001",
  "0.0000000000000000000000001"];
const RUNTIME_FIELDS = ["format", "task", "label_names", "max_length", "tokenizer", "inputs", "outputs", "files"];
const TOKENIZER_FIELDS = ["model", "added_tokens", "normalizer", "pre_tokenizer", "post_processor"];
const DEEP = "\u0001deep\u0001"; // stands for a deeply nested value, spliced into the text (JSON.stringify would recurse)

function value(r, depth = 0) {
  switch (r.int(depth > 2 ? 4 : 9)) {
    case 0: return null;
    case 1: return r.chance(0.5);
    case 2: return r.pick(NUMBERS);
    case 3: return r.pick(STRINGS);
    case 4: return Array.from({ length: r.int(4) }, () => value(r, depth + 1));
    case 5: return Object.fromEntries(Array.from({ length: r.int(4) }, () => [r.pick(STRINGS).slice(0, 20), value(r, depth + 1)]));
    case 6: return DEEP;
    case 7: return r.chance(0.5) ? Array(r.pick([1000, 200_000])).fill(r.pick([0, "a", null])) : { name: value(r, depth + 1) };
    default: return r.pick([[], {}, [{ name: "input_ids" }], { name: "logits" }, "kdedge-bundle/1", 0, ""]);
  }
}

const deepText = (r) => {
  const n = r.pick([100, 10_000, 200_000]);
  return r.chance(0.5) ? "[".repeat(n) + "]".repeat(n) : '{"a":'.repeat(n) + "1" + "}".repeat(n);
};

// Every path into a parsed JSON value; large containers (a vocabulary) give a few sampled children, not all.
function paths(node, r, prefix = [], out = []) {
  out.push(prefix);
  if (node === null || typeof node !== "object") return out;
  let keys = Array.isArray(node) ? node.map((_, i) => i) : Object.keys(node);
  if (keys.length > 24) keys = Array.from({ length: 4 }, () => r.pick(keys));
  for (const key of keys) paths(node[key], r, [...prefix, key], out);
  return out;
}

// A structural mutation of a parsed JSON document: a field dropped, retyped, renamed or duplicated.
// Half the time among the paths under `hot` (the fields a runtime reads), if given.
function mutateTree(doc, r, hot = null) {
  const copy = structuredClone(doc);
  let all = paths(copy, r).filter((p) => p.length > 0);
  if (hot && r.chance(0.5)) all = all.filter((p) => hot.includes(p[0]));
  const steps = 1 + (r.chance(0.3) ? r.int(3) : 0);
  for (let s = 0; s < steps && all.length; s++) {
    const p = r.pick(all);
    const parent = p.slice(0, -1).reduce((n, k) => (n !== null && typeof n === "object" ? n[k] : undefined), copy);
    if (parent === null || typeof parent !== "object") continue;
    const key = p.at(-1);
    const action = r.int(6);
    if (action === 0) {
      if (Array.isArray(parent)) parent.splice(key, 1); else delete parent[key];
    } else if (action === 1 && typeof parent[key] === "string" && r.chance(0.5)) {
      parent[key] = r.pick(PATH_TRICKS);
    } else if (action === 2 && typeof parent[key] === "number") {
      parent[key] = r.pick(NUMBERS);
    } else if (action === 3 && !Array.isArray(parent)) {
      parent[r.pick(["__proto__", "constructor", `${key}\u0000`, String(key).toUpperCase()])] = parent[key];
      if (r.chance(0.5)) delete parent[key];
    } else {
      parent[key] = value(r);
    }
  }
  return copy;
}

// The document as text with a byte-level mutation at times: truncated, bytes flipped, invalid UTF-8 inserted, ...
const BYTES = [[0x00], [0xff], [0xc3], [0x80], [0xed, 0xa0, 0x80], [0xef, 0xbb, 0xbf], [0xf4, 0x90, 0x80, 0x80],
  [0xc0, 0xaf], [0x22], [0x5c], [0x7b], [0x5b], [0x2c], [0x0a], [0x5c, 0x75, 0x64, 0x38, 0x30, 0x30]];
function mutateBytes(buffer, r) {
  let b = Buffer.from(buffer);
  const at = () => r.int(b.length + 1);
  switch (r.int(7)) {
    case 0: return b.subarray(0, at());
    case 1: for (let k = 1 + r.int(8); k > 0 && b.length; k--) b[r.int(b.length)] ^= 1 << r.int(8); return b;
    case 2: { const i = at(); return Buffer.concat([b.subarray(0, i), Buffer.from(r.pick(BYTES)), b.subarray(i)]); }
    case 3: { const i = at(); return Buffer.concat([b.subarray(0, i), b.subarray(Math.min(b.length, i + 1 + r.int(64)))]); }
    case 4: { const i = at(); const j = Math.min(b.length, i + r.int(200)); return Buffer.concat([b.subarray(0, j), b.subarray(i)]); }
    case 5: { // a number literal made huge, fractional or out of range
      const text = b.toString("latin1");
      const numbers = [...text.matchAll(/-?\d+(\.\d+)?([eE][+-]?\d+)?/g)];
      if (!numbers.length) return b;
      const m = r.pick(numbers);
      return Buffer.from(text.slice(0, m.index) + r.pick(NUMBER_TEXTS) + text.slice(m.index + m[0].length), "latin1");
    }
    default: return Buffer.concat([Buffer.from(r.pick([[0xef, 0xbb, 0xbf], [0x00], [0x20], [0xfe, 0xff]])), b]);
  }
}

// A mutated JSON document: a structural change, a byte-level one, or both (or the document unchanged, rarely).
function mutateJson(doc, r, hot = null) {
  const tree = r.chance(0.75) ? mutateTree(doc, r, hot) : doc;
  let text = JSON.stringify(tree, null, r.chance(0.5) ? 2 : undefined);
  if (text.includes(DEEP)) text = text.replaceAll(JSON.stringify(DEEP), () => deepText(r));
  if (r.chance(0.1)) text = text.replace('"format"', '"format": "kdedge-bundle/0", "format"'); // a duplicate key
  let bytes = Buffer.from(text, "utf8");
  if (tree === doc || r.chance(0.35)) bytes = mutateBytes(bytes, r);
  return bytes;
}

// ---- the property ----------------------------------------------------------------------------------------------
// `fn` returns a result or throws; anything but a BundleError with a one-line message fails the case.
async function bundleErrorOr(fn, what) {
  try {
    return { result: await fn() };
  } catch (e) {
    if (!(e instanceof BundleError)) {
      assert.fail(`${what}: ${e?.name}: ${String(e?.message).slice(0, 300)} (not a BundleError)\n${e?.stack}`);
    }
    assert.ok(!/[\r\n]/.test(e.message), `${what}: the BundleError is more than one line: ${JSON.stringify(e.message.slice(0, 600))}`);
    return { error: e };
  }
}

const TEXTS = ["a gorgeous, witty film", "", "   ", "the plot is paper-thin", "Ce film était très émouvant — 真的很好看! 🎬",
  "\u0000", "a\ud800b", "\udfff", "x".repeat(5000), "\u202e\u0301\u200b", "[CLS] [SEP] [PAD] [UNK] [MASK]", "\t\r\n",
  "word ".repeat(600), "\ufffd\ufeff", "🎬".repeat(400), "ＡＢＣ ＮＦＫＣ", "ǅ ß ﬁ İ", "<s></s><pad>"];

// A loaded classifier gives a well-formed prediction for any string (and pair, for a pair task).
async function predictsWell(classifier, r, what) {
  const texts = Array.from({ length: 1 + r.int(4) }, () => r.pick(TEXTS));
  const pairs = classifier.isPair ? texts.map(() => r.pick(TEXTS)) : null;
  const predictions = await classifier.predict(texts, pairs, { batchSize: 1 + r.int(4) });
  assert.equal(predictions.length, texts.length, what);
  const width = classifier.isRegression ? 1 : classifier.labels.length;
  for (const p of predictions) {
    assert.equal(p.logits.length, width, `${what}: ${p.logits.length} logits for ${width} outputs`);
    assert.ok(p.logits.every(Number.isFinite), `${what}: logits ${p.logits}`);
    if (classifier.isRegression) assert.equal(p.label, null, what);
    else assert.ok(classifier.labels.includes(p.label) && p.score >= 0 && p.score <= 1, `${what}: ${JSON.stringify(p)}`);
  }
}

// ---- the fixtures: real bundles, copied into a scratch folder beside a file that must never be read ------------------
function fixtureBundles() {
  if (process.env.KDEDGE_FUZZ_BUNDLES) return process.env.KDEDGE_FUZZ_BUNDLES.split(path.delimiter).filter(Boolean);
  const fixtures = path.join(ROOT, "export", "web", "test", ".fixtures");
  const venv = path.join(ROOT, ".venv", "bin", "python");
  const python = process.env.KDEDGE_PYTHON ?? (fs.existsSync(venv) ? venv : "python3");
  // the browser tests' bundles: rebuilt only when kdedge changed (fixtures.py keeps a stamp); ~1 min the first time
  const built = spawnSync(python, [path.join(ROOT, "export", "web", "test", "fixtures.py"), fixtures],
    { stdio: ["ignore", "ignore", "pipe"], encoding: "utf8" });
  if (built.status !== 0) {
    throw new Error(`the fuzz tests start from real bundles, built by export/web/test/fixtures.py in kdedge's ` +
      `environment (or give KDEDGE_FUZZ_BUNDLES): ${(built.stderr || String(built.error)).trim().split("\n").at(-1)}`);
  }
  return fs.readdirSync(fixtures).map((c) => path.join(fixtures, c, "bundle")).filter((b) => fs.existsSync(b)).sort();
}

const BUNDLES = fixtureBundles().map((dir) => ({
  dir, name: path.basename(path.dirname(dir)) === ".fixtures" ? path.basename(dir) : path.basename(path.dirname(dir)),
  files: Object.fromEntries(fs.readdirSync(dir).map((f) => [f, fs.readFileSync(path.join(dir, f))])),
}));
const SCRATCH = fs.mkdtempSync(path.join(os.tmpdir(), "kdedge-fuzz-"));
after(() => fs.rmSync(SCRATCH, { recursive: true, force: true }));

// Reads of files' contents, recorded (the runtime's own `import { readFileSync } from "node:fs"` sees the wrapper).
const reads = [];
for (const name of ["readFileSync", "openSync"]) {
  const original = fs[name];
  fs[name] = function recorded(file, ...rest) {
    if (typeof file === "string" || file instanceof URL || Buffer.isBuffer(file)) reads.push(String(file instanceof URL ? fileURLToPath(file) : file));
    return original.call(this, file, ...rest);
  };
}
nodeModule.syncBuiltinESMExports();

function readsOutside(dir) {
  const root = fs.realpathSync(dir) + path.sep;
  return reads.filter((f) => !(fs.existsSync(f) ? fs.realpathSync(f) : path.resolve(f)).startsWith(root));
}

// A scratch copy of a bundle with some of its files mutated; beside it, outside.json (a copy of its tokenizer.json
// and manifest.json that a runtime must never read) and a sibling folder whose name starts like the bundle's.
let scratchCount = 0;
function mutatedBundle(bundle, r, { tokenizerOnly = false } = {}) {
  const case_ = path.join(SCRATCH, String(scratchCount++));
  const dir = path.join(case_, "bundle");
  fs.mkdirSync(dir, { recursive: true });
  fs.mkdirSync(path.join(case_, "bundle-evil"));
  fs.writeFileSync(path.join(case_, "outside.json"), bundle.files["tokenizer.json"]);
  fs.writeFileSync(path.join(case_, "bundle-evil", "tokenizer.json"), bundle.files["tokenizer.json"]);
  fs.writeFileSync(path.join(case_, "outside-manifest.json"), bundle.files["manifest.json"]);
  for (const [name, bytes] of Object.entries(bundle.files)) fs.writeFileSync(path.join(dir, name), bytes);
  const manifest = JSON.parse(bundle.files["manifest.json"]);
  const tokenizer = JSON.parse(bundle.files["tokenizer.json"]);
  const changed = [];
  const target = tokenizerOnly ? r.pick(["tokenizer.json", "tokenizer.json", "tokenizer_config.json"])
    : r.pick(["manifest.json", "manifest.json", "manifest.json", "tokenizer.json", "link", "rename"]);
  if (target === "manifest.json") {
    fs.writeFileSync(path.join(dir, "manifest.json"), mutateJson(manifest, r, RUNTIME_FIELDS));
  } else if (target === "tokenizer.json") {
    fs.writeFileSync(path.join(dir, "tokenizer.json"), mutateJson(tokenizer, r, TOKENIZER_FIELDS));
  } else if (target === "tokenizer_config.json") {
    const config = bundle.files["tokenizer_config.json"] ? JSON.parse(bundle.files["tokenizer_config.json"]) : {};
    fs.writeFileSync(path.join(dir, "tokenizer_config.json"), mutateJson(config, r));
  } else if (target === "link") { // a file of the bundle replaced by a link out of it
    const name = r.pick(["manifest.json", "tokenizer.json", "model.onnx", "tokenizer_config.json"]);
    fs.rmSync(path.join(dir, name), { force: true });
    fs.symlinkSync(r.pick(["../outside.json", "../outside-manifest.json", "../bundle-evil/tokenizer.json", "/etc/hostname"]),
      path.join(dir, name));
  } else { // the tokenizer moved and the manifest pointing at it (or at a trick)
    const name = r.pick(["sub/tok.json", "tok en.json", "ünïcode.json", "a/b/c.json", ...PATH_TRICKS.slice(0, 12)]);
    manifest.tokenizer.file = name;
    fs.writeFileSync(path.join(dir, "manifest.json"), JSON.stringify(manifest));
    const moved = path.resolve(dir, name);
    if (name && moved.startsWith(dir + path.sep) && !/[\u0000]/.test(name)) {
      fs.mkdirSync(path.dirname(moved), { recursive: true });
      try { fs.renameSync(path.join(dir, "tokenizer.json"), moved); } catch { /* a name the file system refuses */ }
    }
  }
  changed.push(target);
  return { dir, changed };
}

// ---- the targets -----------------------------------------------------------------------------------------------
describe("fuzz: kdedge-runtime-core, the Node and browser runtimes, the Node example server", () => {
  test("there are real bundles to start from", () => {
    assert.ok(BUNDLES.length > 0, "no bundles found");
    for (const b of BUNDLES) assert.ok(b.files["manifest.json"] && b.files["model.onnx"] && b.files["tokenizer.json"], b.dir);
  });

  test("manifest.json: parseManifest (Node and the browser) gives a checked manifest or one BundleError", async () => {
    const stats = await fuzz("parseManifest", 600, async (r, i) => {
      const bundle = BUNDLES[i % BUNDLES.length];
      const text = mutateJson(JSON.parse(bundle.files["manifest.json"]), r, RUNTIME_FIELDS).toString("utf8");
      const { result } = await bundleErrorOr(() => parseManifest(text, "bundle/manifest.json"), "parseManifest");
      if (result) {
        assert.equal(result.format, "kdedge-bundle/1");
        assert.ok(!/(^|\/)\.\.(\/|$)|^\/|\\/.test(result.tokenizer.file), `accepted tokenizer.file ${result.tokenizer.file}`);
      }
    });
    console.log(`parseManifest: ${JSON.stringify(stats)}`);
  });

  test("tokenizer.json: BundleTokenizer builds and encodes, or refuses with an error the loader turns into a BundleError", async () => {
    // Construction errors are wrapped by Classifier.fromFiles; once built, encoding any string must not throw.
    const stats = await fuzz("BundleTokenizer", 400, async (r, i) => {
      const bundle = BUNDLES[i % BUNDLES.length];
      const manifest = JSON.parse(bundle.files["manifest.json"]);
      let json;
      try {
        json = JSON.parse(mutateJson(JSON.parse(bundle.files["tokenizer.json"]), r, TOKENIZER_FIELDS).toString("utf8"));
      } catch {
        return; // not JSON: the loader's own message (the Classifier targets check it)
      }
      let tokenizer;
      try {
        tokenizer = new BundleTokenizer(json, {}, { maxLength: manifest.max_length, addSpecialTokens: manifest.tokenizer.add_special_tokens });
      } catch {
        return; // refused at load: Classifier.fromFiles turns it into a BundleError (checked below)
      }
      for (let k = 0; k < 3; k++) {
        const encoded = tokenizer.encode(r.pick(TEXTS), manifest.task.is_pair ? r.pick(TEXTS) : null);
        assert.ok(encoded.ids.length <= manifest.max_length, `${encoded.ids.length} ids for max_length ${manifest.max_length}`);
      }
    });
    console.log(`BundleTokenizer: ${JSON.stringify(stats)}`);
  });

  test("a bundle folder: Classifier.load (Node) loads and predicts, or throws one BundleError, reading nothing outside", async () => {
    const stats = await fuzz("Classifier.load", 80, async (r, i) => {
      const bundle = BUNDLES[i % BUNDLES.length];
      const { dir, changed } = mutatedBundle(bundle, r);
      reads.length = 0;
      const what = `Classifier.load of ${bundle.name} with ${changed} mutated`;
      const { result } = await bundleErrorOr(() => Classifier.load(dir), what);
      assert.deepEqual(readsOutside(dir), [], `${what}: read outside the bundle`);
      if (result) await predictsWell(result, r, what);
    });
    console.log(`Classifier.load: ${JSON.stringify(stats)}`);
  });

  test("a bundle's tokenizer: Classifier.load with a mutated tokenizer.json loads and predicts, or one BundleError", async () => {
    const stats = await fuzz("tokenizer.json", 60, async (r, i) => {
      const bundle = BUNDLES[i % BUNDLES.length];
      const { dir, changed } = mutatedBundle(bundle, r, { tokenizerOnly: true });
      const what = `Classifier.load of ${bundle.name} with ${changed} mutated`;
      const { result } = await bundleErrorOr(() => Classifier.load(dir), what);
      if (result) await predictsWell(result, r, what);
    });
    console.log(`tokenizer.json: ${JSON.stringify(stats)}`);
  });

  test("the texts: a loaded classifier predicts any string, and refuses anything else with a one-line TypeError", async () => {
    const classifiers = await Promise.all(BUNDLES.map((b) => Classifier.load(b.dir)));
    const stats = await fuzz("predict", 200, async (r, i) => {
      const classifier = classifiers[i % classifiers.length];
      const pick = () => (r.chance(0.7) ? r.pick(TEXTS) : r.pick(STRINGS));
      if (r.chance(0.8)) {
        await predictsWell(classifier, { ...r, pick: (xs) => (xs === TEXTS ? pick() : r.pick(xs)) }, "predict");
        return;
      }
      let bad = value(r);
      // a list of strings is a valid batch: 200,000 of them are 200,000 predictions (seconds of work), not a hang
      if (Array.isArray(bad) && bad.every((v) => typeof v === "string")) bad = bad.slice(0, 1000);
      const [texts, pairs] = classifier.isPair ? [r.chance(0.5) ? bad : ["x"], r.chance(0.5) ? bad : ["y"]] : [bad, null];
      try {
        await classifier.predict(texts === DEEP ? "deep" : texts, pairs === DEEP ? ["deep"] : pairs);
      } catch (e) {
        assert.ok(e instanceof TypeError || (e.name === "Error" && /pairs|texts/.test(e.message)),
          `predict(${JSON.stringify(texts)?.slice(0, 80)}): ${e.name}: ${e.message}`);
        assert.ok(!/[\r\n]/.test(e.message), e.message);
      }
    });
    console.log(`predict: ${JSON.stringify(stats)}`);
  });

  // The browser runtime's loader, export/web/src/load.js, with onnxruntime-node in onnxruntime-web's place and a fetch
  // that serves the scratch folders as a static server would (decoding escapes), recording every URL asked for.
  test("a bundle URL: the browser's Classifier.load fetches only inside the bundle, and loads or throws one BundleError", async (t) => {
    if (!nodeModule.register) return t.skip("module.register (Node >= 20.6) is needed to load export/web/src/load.js here");
    const parent = pathToFileURL(path.join(NODE_DIR, "package.json")).href;
    nodeModule.register(`data:text/javascript,${encodeURIComponent(`export async function resolve(s, c, next) {
      return next(s, s === "kdedge-runtime-core" && c.parentURL?.includes("/export/web/src/") ? { ...c, parentURL: ${JSON.stringify(parent)} } : c);
    }`)}`);
    const { webClassifier } = await import(pathToFileURL(path.join(ROOT, "export", "web", "src", "load.js")).href);
    const WebClassifier = webClassifier(ort, ["cpu"]);
    const ORIGIN = "http://bundles.test";
    const fetched = [];
    const fetchFn = async (url) => {
      url = new URL(url);
      const file = path.join(SCRATCH, decodeURIComponent(url.pathname));
      fetched.push({ url: url.href, file });
      if (url.origin !== ORIGIN || !fs.existsSync(file) || !fs.statSync(file).isFile()) return new Response("not found", { status: 404 });
      return new Response(fs.readFileSync(file));
    };
    const stats = await fuzz("web Classifier.load", 50, async (r, i) => {
      const bundle = BUNDLES[i % BUNDLES.length];
      const { dir, changed } = mutatedBundle(bundle, r);
      const base = `${ORIGIN}/${path.relative(SCRATCH, dir)}`;
      fetched.length = 0;
      const what = `web Classifier.load of ${bundle.name} with ${changed} mutated`;
      const { result } = await bundleErrorOr(() => WebClassifier.load(r.chance(0.5) ? base : `${base}/`, { fetch: fetchFn }), what);
      const outside = fetched.filter((f) => !path.resolve(f.file).startsWith(dir + path.sep) || !f.url.startsWith(`${base}/`));
      assert.deepEqual(outside, [], `${what}: fetched outside the bundle`);
      if (result) await predictsWell(result, r, what);
    });
    console.log(`web Classifier.load: ${JSON.stringify(stats)}`);
  });
});

// Not fuzz, on the same real bundles: predict() of one text builds its batch-1 feed directly from the tokenizer
// (Classifier.feedOf, issue 49); it must give exactly what the batched path (encode, pad, run, decode) gives.
describe("one text: predict's direct path against the batched path", () => {
  test("the same feed, and the same logits, label and score, for single-text and pair bundles", async () => {
    const kinds = new Set();
    for (const bundle of BUNDLES) {
      const classifier = await Classifier.load(bundle.dir);
      kinds.add(classifier.isPair ? `pair (${classifier.pairEncoding})` : "single");
      const texts = [...TEXTS, "A GORGEOUS, witty film!", "it 's a charming and often affecting journey . "];
      const pairs = classifier.isPair ? texts.map((_, i) => texts[(i + 5) % texts.length]) : null;
      // batches of one row (more than one text, so the batched path): no padding, so even dynamic int8 agrees exactly
      const batched = await classifier.predict(texts, pairs, { batchSize: 1 });
      for (let i = 0; i < texts.length; i++) {
        const pair = pairs ? pairs[i] : null;
        const what = `${bundle.name}: ${JSON.stringify(texts[i]).slice(0, 40)}${pair === null ? "" : ` / ${JSON.stringify(pair).slice(0, 40)}`}`;
        const direct = classifier.feedOf(texts[i], pair);
        const padded = classifier.pad([classifier.encode(texts[i], pair)]);
        assert.deepEqual(Object.keys(direct), Object.keys(padded), what);
        for (const name of Object.keys(padded)) {
          assert.deepEqual([direct[name].type, direct[name].dims, [...direct[name].data]],
            [padded[name].type, padded[name].dims, [...padded[name].data]], `${what}: ${name}`);
        }
        assert.deepEqual(await classifier.predict(texts[i], pair), batched[i], what);
        assert.deepEqual((await classifier.logits(texts[i], pair))[0], batched[i].logits, what);
      }
    }
    if (!process.env.KDEDGE_FUZZ_BUNDLES) {
      assert.ok(kinds.has("single") && kinds.has("pair (joint)") && kinds.has("pair (separate)"), [...kinds].join(", "));
    }
  });

  test("calls in flight together each get their own text's answer (one text's feed buffer is not shared by two)", async () => {
    for (const bundle of BUNDLES) {
      const classifier = await Classifier.load(bundle.dir);
      // texts of different lengths, so that a feed overwritten by the next call's would change the answer
      const texts = [...TEXTS, "A GORGEOUS, witty film!", "it 's a charming and often affecting journey . "];
      const pairs = classifier.isPair ? texts.map((_, i) => texts[(i + 5) % texts.length]) : texts.map(() => null);
      const alone = [];
      for (let i = 0; i < texts.length; i++) alone.push(await classifier.predict(texts[i], pairs[i]));
      const together = await Promise.all(texts.map((t, i) => classifier.predict(t, pairs[i])));
      assert.deepEqual(together, alone, bundle.name);
      assert.deepEqual(await Promise.all(texts.map((t, i) => classifier.logits(t, pairs[i]))),
        alone.map((p) => [p.logits]), bundle.name);
    }
  });
});

// ---- the Node example server ----------------------------------------------------------------------------------
const freePort = () => new Promise((resolve) => {
  const s = net.createServer().listen(0, "127.0.0.1", () => { const { port } = s.address(); s.close(() => resolve(port)); });
});

// Sends raw bytes on a new connection; resolves with what came back once a whole response is in (or the server closes
// the connection, or `ms` pass), and when the response began.
function exchange(port, chunks, { ms = 5000, end = false } = {}) {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    const data = [];
    let done = false;
    const finish = (how) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ text: Buffer.concat(data).toString("latin1"), how });
    };
    const timer = setTimeout(() => finish("timeout"), ms);
    socket.on("data", (d) => {
      data.push(d);
      const text = Buffer.concat(data).toString("latin1");
      const head = text.indexOf("\r\n\r\n");
      if (head < 0) return;
      const length = /\r\ncontent-length:\s*(\d+)/i.exec(text.slice(0, head));
      if (length && text.length - head - 4 >= Number(length[1])) finish("answered");
    });
    socket.on("error", () => finish("error"));
    socket.on("close", () => finish("closed"));
    socket.on("connect", () => {
      for (const c of chunks) socket.write(c);
      if (end) socket.end();
    });
  });
}

const GOOD_BODY = '{"texts": ["a gorgeous, witty film", "the plot is paper-thin"]}';
const request = (body, { headers = null, line = "POST /predict HTTP/1.1" } = {}) => {
  const h = headers ?? [["Host", "127.0.0.1"], ["Content-Type", "application/json"], ["Content-Length", Buffer.byteLength(body)]];
  return Buffer.concat([Buffer.from(`${line}\r\n${h.map(([k, v]) => `${k}: ${v}`).join("\r\n")}\r\n\r\n`, "latin1"),
    Buffer.isBuffer(body) ? body : Buffer.from(body, "utf8")]);
};

// A malformed (or, at times, well-formed but odd) request: its bytes, whether to half-close after sending.
function hostileRequest(r) {
  const body = () => {
    const doc = { texts: r.chance(0.5) ? r.pick(TEXTS) : [r.pick(TEXTS), r.pick(TEXTS)] };
    if (r.chance(0.2)) doc.pairs = doc.texts;
    return r.chance(0.6) ? mutateJson(doc, r) : Buffer.from(JSON.stringify(doc));
  };
  const line = () => r.pick(["POST /predict HTTP/1.1", "POST /predict HTTP/1.0", "GET /predict HTTP/1.1",
    "POST /predict?x=1 HTTP/1.1", "POST /../predict HTTP/1.1", "POST //predict HTTP/1.1", "PUT /predict HTTP/1.1",
    "POST /predict HTTP/9.9", "POST /predict", "POST  /predict  HTTP/1.1", "post /predict HTTP/1.1", "\u0000\u0001\u0002",
    `POST /${"a".repeat(r.pick([100, 20_000]))} HTTP/1.1`, "POST /predict HTTP/1.1 extra", "BREW /pot HTCPCP/1.0",
    "POST /pr\u00e9dict HTTP/1.1", "POST /predict\u0000 HTTP/1.1", "\r\n\r\nPOST /predict HTTP/1.1"]);
  switch (r.int(8)) {
    case 0: return { bytes: request(body()) }; // a mutated JSON body with its right length
    case 1: return { bytes: request(GOOD_BODY, { line: line() }) };
    case 2: { // a bad Content-Length, or two, or none (chunked instead)
      const b = body();
      const length = r.pick(["-1", "abc", "1e3", "99999999999999999999", "+5", "0x10", " 5 ", "", "5, 5", String(b.length + 3),
        String(Math.max(0, b.length - 3)), "0", String(2 ** 53)]);
      const headers = [["Host", "x"], ["Content-Length", length]];
      if (r.chance(0.3)) headers.push(["Content-Length", String(b.length)]);
      if (r.chance(0.2)) headers.push(["Transfer-Encoding", r.pick(["chunked", "gzip", "chunked, identity"])]);
      return { bytes: request(b, { headers }), end: true };
    }
    case 3: { // huge or strange headers
      const headers = [["Host", "x"], ["Content-Length", Buffer.byteLength(GOOD_BODY)]];
      const kind = r.int(4);
      if (kind === 0) headers.push(["X-Big", "a".repeat(r.pick([8000, 20_000, 100_000]))]);
      if (kind === 1) for (let k = 0; k < r.pick([100, 3000]); k++) headers.push([`X-${k}`, "1"]);
      if (kind === 2) headers.push([r.pick(["Bad Name", "X\u0000", "", ":"]), "v"]);
      if (kind === 3) headers.push(["X-Bytes", "\u00ff\u0000\u0080\r"]);
      return { bytes: request(GOOD_BODY, { headers }) };
    }
    case 4: { // a truncated body, the connection half-closed
      const b = body();
      return { bytes: request(b).subarray(0, request(b).length - 1 - r.int(Math.max(1, b.length))), end: true };
    }
    case 5: return { bytes: Buffer.from(Array.from({ length: r.int(300) }, () => r.int(256))), end: r.chance(0.5) }; // noise
    case 6: { // a JSON body too big, or with too many texts, or nested too deep
      const big = r.pick([`{"texts": [${'"a",'.repeat(2000)}"a"]}`, `{"texts": "${"a".repeat(1_100_000)}"}`,
        `{"texts": ${"[".repeat(300_000)}${"]".repeat(300_000)}}`, `{"texts": ["${"word ".repeat(100_000)}"]}`]);
      return { bytes: request(big) };
    }
    default: { // two requests on one connection, the second mutated
      const second = r.chance(0.5) ? request(body()) : mutateBytes(request(GOOD_BODY), r);
      return { bytes: Buffer.concat([request(GOOD_BODY, { line: "POST /predict HTTP/1.1" }), second]), end: r.chance(0.5) };
    }
  }
}

describe("fuzz: the Node example server (examples/serve.js)", () => {
  let server, port, stderr = "";
  before(async () => {
    port = await freePort();
    const bundle = BUNDLES.find((b) => b.name.startsWith("sst2")) ?? BUNDLES[0];
    server = spawn(process.execPath, [path.join(NODE_DIR, "examples", "serve.js"), bundle.dir, String(port)],
      { env: { ...process.env, SERVE_READ_TIMEOUT_S: "1" }, stdio: ["ignore", "pipe", "pipe"] });
    server.stderr.on("data", (d) => { stderr += d; });
    await new Promise((resolve, reject) => {
      server.stdout.on("data", (d) => { if (String(d).includes("serving on")) resolve(); });
      server.on("exit", (code) => reject(new Error(`the server exited (${code}): ${stderr}`)));
    });
  });
  after(() => server?.kill());

  test("every request gets an HTTP answer (never a 5xx, never a hang), and a well-formed one after it gets 200", async () => {
    const good = async (what) => {
      const { text, how } = await exchange(port, [request(GOOD_BODY)]);
      assert.ok(text.startsWith("HTTP/1.1 200 "), `${what}: a well-formed request got ${how}: ${text.slice(0, 200)}`);
      assert.equal(JSON.parse(text.slice(text.indexOf("\r\n\r\n") + 4)).predictions.length, 2);
    };
    const stats = await fuzz("serve.js", 150, async (r, i) => {
      const { bytes, end } = hostileRequest(r);
      const { text, how } = await exchange(port, [bytes], { ms: 4000, end });
      const what = `${JSON.stringify(bytes.subarray(0, 120).toString("latin1"))} (${bytes.length} bytes)`;
      assert.notEqual(how, "timeout", `${what}: no answer and the connection still open after 4 s`);
      for (const status of text.matchAll(/(^|\r\n\r\n|\})HTTP\/1\.[01] (\d{3})/g)) {
        assert.ok(Number(status[2]) < 500, `${what}: answered ${text.slice(0, 300)}`);
      }
      assert.ok(text === "" || /^HTTP\/1\.[01] \d{3} /.test(text), `${what}: answered ${JSON.stringify(text.slice(0, 200))}`);
      assert.equal(server.exitCode, null, `${what}: the server exited: ${stderr}`);
      if (i % 10 === 9) await good(what);
    });
    await good("the last case");
    assert.equal(stderr, "", "the server logged errors");
    console.log(`serve.js: ${JSON.stringify(stats)}`);
  });

  // The short version of benchmarks/server_abuse.py.
  test("under abuse: 50 slow connections do not hold up a request; 300 requests leave its memory about flat", async (t) => {
    const slow = Array.from({ length: 50 }, () => {
      const s = net.connect(port, "127.0.0.1");
      s.on("error", () => {});
      s.write("POST /predict HTTP/1.1\r\nHost: x\r\n"); // and nothing more
      return s;
    });
    await new Promise((resolve) => setTimeout(resolve, 200));
    const started = performance.now();
    const { text } = await exchange(port, [request(GOOD_BODY)]);
    assert.ok(text.startsWith("HTTP/1.1 200 "), text.slice(0, 200));
    assert.ok(performance.now() - started < 3000, `${Math.round(performance.now() - started)} ms`);
    slow.forEach((s) => s.destroy());
    const invalid = await exchange(port, [request(Buffer.from('{"texts": ["caf\xe9"]}', "latin1"))]);
    assert.match(invalid.text, /^HTTP\/1\.1 400 [^]*not UTF-8/); // was decoded with U+FFFD and answered 200
    if (!fs.existsSync(`/proc/${server.pid}/status`)) return t.skip("RSS is read from /proc (Linux)");
    const rss = () => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${server.pid}/status`, "utf8"))[1]);
    const burst = async (n) => {
      for (let k = 0; k < n; k += 10) {
        const answers = await Promise.all(Array.from({ length: 10 }, () => exchange(port, [request(GOOD_BODY)])));
        assert.ok(answers.every((a) => a.text.startsWith("HTTP/1.1 200 ")));
      }
    };
    await burst(100);
    const before = rss();
    await burst(300);
    assert.ok(rss() < before * 1.3, `RSS ${before} kB -> ${rss()} kB over 300 requests`);
  });
});

// ---- what the fuzzers found, each kept as a regular test -------------------------------------------------------
describe("fuzz findings", () => {
  const bundleNamed = (prefix) => BUNDLES.find((b) => b.name.startsWith(prefix)) ?? BUNDLES[0];
  const copyOf = (bundle, change) => {
    const dir = fs.mkdtempSync(path.join(SCRATCH, "finding-"));
    for (const [name, bytes] of Object.entries(bundle.files)) fs.writeFileSync(path.join(dir, name), bytes);
    change(dir, JSON.parse(bundle.files["manifest.json"]), JSON.parse(bundle.files["tokenizer.json"]));
    return dir;
  };
  const rejects = async (dir, pattern) => {
    const { error } = await bundleErrorOr(() => Classifier.load(dir), dir);
    assert.ok(error, `${dir} loaded`);
    assert.match(error.message, pattern);
  };

  test("a manifest with a syntax error: V8 quotes the text, newlines too; the BundleError stays one line", () => {
    assert.throws(() => parseManifest('{\n  "format": "kdedge-bundle/1",\n  oops\n}', "m.json"),
      (e) => e instanceof BundleError && /^m\.json is not valid JSON \(/.test(e.message) && !/[\r\n]/.test(e.message));
  });

  test("a tokenizer.file with a newline is named on one line", () => {
    const manifest = JSON.parse(bundleNamed("sst2").files["manifest.json"]);
    manifest.tokenizer.file = "tokenizer.json\n";
    assert.throws(() => parseManifest(JSON.stringify(manifest), "m.json"),
      (e) => e instanceof BundleError && e.message.includes("(tokenizer.json\\n)") && !/[\r\n]/.test(e.message));
  });

  test("a vocabulary of 200,000 words loads (its size was a spread of every id: a RangeError past ~125,000)", () => {
    const vocab = Object.fromEntries(Array.from({ length: 200_000 }, (_, i) => [`w${i}`, i]));
    const json = { version: "1.0", added_tokens: [], normalizer: null, pre_tokenizer: { type: "WhitespaceSplit" },
      post_processor: null, decoder: null, model: { type: "WordLevel", vocab, unk_token: "w0" } };
    const tokenizer = new BundleTokenizer(json, {}, { maxLength: 8, addSpecialTokens: false });
    assert.deepEqual(tokenizer.encode("w7 w199999 nope").ids, [7, 199_999, 0]);
  });

  test("a word-level tokenizer gives a 100,000-letter word the unknown token at once (it took minutes)", () => {
    const json = JSON.parse(bundleNamed("sst2-bilstm").files["tokenizer.json"]);
    assert.equal(json.model.type, "WordLevel");
    const tokenizer = new BundleTokenizer(json, {}, { maxLength: 8, addSpecialTokens: false });
    const started = performance.now();
    assert.deepEqual(tokenizer.encode("x".repeat(100_000)).ids, [json.model.vocab[json.model.unk_token]]);
    assert.ok(performance.now() - started < 2000);
  });

  test("tokenizer.json errors that surfaced only when a text was encoded are refused when the bundle loads", async () => {
    const bert = bundleNamed("sst2-tinybert");
    const cases = [
      [(t) => { delete t.post_processor.special_tokens["[SEP]"]; }, /special token "\[SEP\]" has no ids/],
      // the Python runtime's 30-minute finding (tests/test_untrusted_input.py): the same words there
      [(t) => { t.post_processor.single[0].SpecialToken.id = "[CLR]"; }, /not a valid tokenizer \(post_processor: special token "\[CLR\]" has no ids in the vocabulary\)$/],
      [(t) => { t.post_processor.special_tokens["[CLS]"].ids = [1e9]; }, /special token "\[CLS\]" has no ids/],
      [(t) => { t.post_processor.single[1] = "A"; }, /post_processor\.single holds "A"/],
      [(t) => { t.model.max_input_chars_per_word = [1]; }, /max_input_chars_per_word must be a non-negative integer/],
      [(t) => { t.model.unk_token = "[NOPE]"; }, /unk_token "\[NOPE\]" is not in model\.vocab/],
      [(t) => { t.model.vocab.hello = "7"; }, /model\.vocab must map tokens to non-negative integer ids/],
      [(t) => { t.model.type = "Mystery"; }, /model\.type must be one of/],
      [(t) => { t.post_processor.pair[3].Sequence.type_id = 2 ** 53; }, null], // single-sentence: pairs never encoded
    ];
    for (const [change, pattern] of cases) {
      const dir = copyOf(bert, (d, m, t) => { change(t); fs.writeFileSync(path.join(d, "tokenizer.json"), JSON.stringify(t)); });
      if (pattern) await rejects(dir, pattern);
      else await predictsWell(await Classifier.load(dir), random(1), dir);
    }
  });

  test("a template type id the model has no embedding for is refused at load, not at the first pair", async () => {
    const pair = BUNDLES.find((b) => JSON.parse(b.files["manifest.json"]).tokenizer.pair_encoding === "joint"
      && JSON.parse(b.files["manifest.json"]).inputs.some((i) => i.name === "token_type_ids"));
    if (!pair) return;
    const dir = copyOf(pair, (d, m, t) => {
      t.post_processor.pair.at(-1).SpecialToken.type_id = 7;
      fs.writeFileSync(path.join(d, "tokenizer.json"), JSON.stringify(t));
    });
    await rejects(dir, /gives token type ids up to 7 but .*model\.onnx takes fewer/);
  });

  test("a manifest naming fewer labels than the model's logits is refused (labels were undefined)", async () => {
    const dir = copyOf(bundleNamed("sst2"), (d, m) => {
      m.label_names = ["negative"];
      fs.writeFileSync(path.join(d, "manifest.json"), JSON.stringify(m));
    });
    await rejects(dir, /field 'label_names' names 1 labels, but .*model\.onnx gives 2 logits/);
  });

  test("a manifest.json that links out of the bundle is not read", async () => {
    const dir = copyOf(bundleNamed("sst2"), (d) => {
      fs.writeFileSync(path.join(path.dirname(d), `${path.basename(d)}-outside.json`), fs.readFileSync(path.join(d, "manifest.json")));
      fs.rmSync(path.join(d, "manifest.json"));
      fs.symlinkSync(`../${path.basename(d)}-outside.json`, path.join(d, "manifest.json"));
    });
    reads.length = 0;
    await rejects(dir, /manifest\.json links outside the bundle/);
    assert.deepEqual(readsOutside(dir), []);
  });
});
