// The n-gram student's tokenizer in kdedge-runtime-core (src/ngram.js, what Node and the browser run) against the
// shared golden file export/schema/ngram-golden.json, which tests/test_ngram.py holds the Python runtime to: the same
// words and ids for every text, non-ASCII, empty, ill-formed and over-long ones included.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import { NgramRulesError, NgramTokenizer, checkNgramRules, fnv1a32, wordsOf } from "kdedge-runtime-core";

const SCHEMA_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "schema");
const golden = JSON.parse(readFileSync(path.join(SCHEMA_DIR, "ngram-golden.json"), "utf8"));

test("FNV-1a 32-bit gives the published test vectors and the golden hashes", () => {
  assert.equal(fnv1a32(""), 0x811c9dc5);
  assert.equal(fnv1a32("a"), 0xe40c292c);
  assert.equal(fnv1a32("foobar"), 0xbf9cf968);
  for (const [text, hash] of golden.fnv1a32) assert.equal(fnv1a32(text), hash, JSON.stringify(text));
});

for (const spec of golden.tokenizers) {
  test(`golden words and ids: ${spec.name}`, () => {
    const tokenizer = new NgramTokenizer({ words: spec.words }, checkNgramRules(spec.rules, "golden"),
      { maxLength: spec.max_length });
    assert.equal(tokenizer.vocabularySize, spec.vocab_size);
    for (const c of spec.cases) {
      const label = JSON.stringify(c.text).slice(0, 60);
      assert.deepEqual(wordsOf(c.text, spec.max_length), c.words, label);
      assert.deepEqual(tokenizer.ids(c.text), c.ids, label);
      assert.ok(c.ids.every((id) => id > 0 && id < spec.vocab_size), label);
    }
  });
}

test("rules a runtime does not implement, and malformed ones, are refused naming the field", () => {
  const good = golden.tokenizers[0].rules;
  const cases = [
    [{ ...good, hash: "murmur3" }, "'tokenizer.ngram.hash' must be \"fnv1a-32\""],
    [{ ...good, stopwords: ["the"] }, "has rule \"stopwords\", which this runtime does not implement"],
    [{ ...good, buckets: 0 }, "'tokenizer.ngram.buckets' must be an integer from 1"],
    [{ ...good, char_ngrams: [3, 3] }, "'tokenizer.ngram.char_ngrams' must be a list of distinct integers"],
    [Object.fromEntries(Object.entries(good).filter(([k]) => k !== "split")), "'tokenizer.ngram.split' is missing"],
    ["nfkc", "'tokenizer.ngram' must be an object"],
    [{ ...good, scopes: { cues: ["not"] } }, "'tokenizer.ngram.scopes' must be a list of at most 8 scopes"],
    [{ ...good, scopes: [{ cues: ["not"], ends: [], words: 3, prefix: "n_", until: "." }] },
      "'tokenizer.ngram.scopes[0]' has field \"until\", which this runtime does not implement"],
    [{ ...good, scopes: [{ cues: ["not"], ends: [], words: 3 }] }, "'tokenizer.ngram.scopes[0].prefix' is missing"],
    [{ ...good, scopes: [{ cues: ["n't"], ends: [], words: 3, prefix: "n_" }] },
      "'tokenizer.ngram.scopes[0].cues' must be a list of distinct words, each one lowercase word by the split rule"],
    [{ ...good, scopes: [{ cues: ["Not"], ends: [], words: 3, prefix: "n_" }] }, "'tokenizer.ngram.scopes[0].cues' must"],
    [{ ...good, scopes: [{ cues: [], ends: [], words: 3, prefix: "n_" }] }, "(at least one)"],
    [{ ...good, scopes: [{ cues: ["not"], ends: ["not"], words: 3, prefix: "n_" }] },
      "'tokenizer.ngram.scopes[0]' has \"not\" both as a cue and as an end"],
    [{ ...good, scopes: [{ cues: ["not"], ends: [], words: 0, prefix: "n_" }] },
      "'tokenizer.ngram.scopes[0].words' must be an integer from 1 to 64"],
    [{ ...good, scopes: [{ cues: ["not"], ends: [], words: 3, prefix: "\ud800" }] },
      "'tokenizer.ngram.scopes[0].prefix' must be a non-empty string"],
    [{ ...good, scopes: [{ cues: ["not"], ends: [], words: 3, prefix: "n_" }, { cues: ["no"], ends: [], words: 3, prefix: "n_" }] },
      "'tokenizer.ngram.scopes[1].prefix' \"n_\" is another scope's prefix too"],
  ];
  for (const [rules, words] of cases) {
    assert.throws(() => checkNgramRules(rules, "m.json"), (e) => e instanceof NgramRulesError
      && e.message.startsWith("m.json: field ") && e.message.includes(words) && !e.message.includes("\n"), words);
  }
  assert.throws(() => new NgramTokenizer({ words: ["a", "a"] }, good), /distinct, non-empty strings/);
});

// The rules as written (rule 1's normalization, rule 2's regular expression, joined n-grams hashed through TextEncoder):
// what the tokenizer's direct path for ASCII texts (no regular expression, nothing joined) must give.
const utf8 = new TextEncoder();
const referenceHash = (text) => utf8.encode(text).reduce((h, byte) => Math.imul(h ^ byte, 0x01000193) >>> 0, 0x811c9dc5);
function referenceIds(text, words, rules, maxWords) {
  const found = text.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, "\uFFFD")
    .normalize("NFKC").toLowerCase().match(/[\p{L}\p{M}\p{N}]+|[\p{P}\p{S}]/gu) ?? [];
  const kept = maxWords === null ? found : found.slice(0, maxWords);
  const offset = 1 + words.length;
  const bucket = (feature) => offset + (referenceHash(feature) % rules.buckets);
  const ids = kept.filter((w) => words.includes(w)).map((w) => 1 + words.indexOf(w));
  for (let n = 2; n <= rules.word_ngrams; n++) {
    for (let i = 0; i + n <= kept.length; i++) ids.push(bucket(kept.slice(i, i + n).join(" ")));
  }
  for (const w of kept) {
    const marked = Array.from(`<${w}>`);
    for (const n of rules.char_ngrams) {
      if (n === marked.length) continue;
      for (let i = 0; i + n <= marked.length; i++) ids.push(bucket(marked.slice(i, i + n).join("")));
    }
  }
  for (const { cues, ends, words: width, prefix } of rules.scopes ?? []) {
    let left = 0;
    for (const w of kept) {
      if (cues.includes(w)) left = width;
      else if (ends.includes(w)) left = 0;
      else if (left > 0) ids.push(bucket(prefix + w)), left--;
    }
  }
  return ids;
}

test("ASCII texts (the direct path) and any other get the ids the rules give", () => {
  let state = 48;
  const rnd = () => ((state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const words = ["the", "film", "a", "!", "9", "x1", "it's", "not", "t", "but"];
  const pieces = [...words, "The", "FILM", " ", "  ", "\t", ".", ",", "-", "'", "\u0000", "\u007f", "é", "ß", "ﬁ", "🎬",
    "\ud800", "e\u0301", "ＡＢＣ"];
  const texts = Array.from({ length: 3000 }, (_, i) => {
    let text = "";
    for (let n = Math.floor(rnd() * 24); n > 0; n--) {
      text += rnd() < 0.5 ? String.fromCharCode(Math.floor(rnd() * 128)) : pieces[Math.floor(rnd() * (i % 4 ? 17 : pieces.length))];
    }
    return text;
  });
  const base = golden.tokenizers[0].rules;
  const scopes = [{ cues: ["not", "t", "é"], ends: [".", "!"], words: 2, prefix: "not_" },
    { cues: ["a"], ends: [], words: 5, prefix: "¬" }];
  // a word that opens one scope and closes another, as negation and contrast share "but"
  const crossed = [{ cues: ["not", "t"], ends: ["but", "."], words: 3, prefix: "n_" },
    { cues: ["but"], ends: ["."], words: 4, prefix: "b_" }];
  for (const rules of [base, { ...base, word_ngrams: 5, buckets: 2 ** 31 - 1 }, { ...base, word_ngrams: 3, char_ngrams: [1, 3, 5] },
    { ...base, scopes }, { ...base, word_ngrams: 3, scopes }, { ...base, word_ngrams: 1, char_ngrams: [2], scopes },
    { ...base, scopes: crossed }]) {
    for (const maxWords of [null, 4]) {
      const tokenizer = new NgramTokenizer({ words }, checkNgramRules(rules, "test"), { maxLength: maxWords });
      for (const text of texts) {
        assert.deepEqual(tokenizer.ids(text), referenceIds(text, words, rules, maxWords), `${JSON.stringify(rules)}: ${JSON.stringify(text)}`);
      }
    }
  }
  for (const text of texts) assert.equal(fnv1a32(text), referenceHash(text), JSON.stringify(text));
});
