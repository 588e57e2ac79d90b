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
  ];
  for (const [rules, words] of cases) {
    assert.throws(() => checkNgramRules(rules, "m.json"), (e) => e instanceof NgramRulesError
      && e.message.startsWith("m.json: field ") && e.message.includes(words) && !e.message.includes("\n"), words);
  }
  assert.throws(() => new NgramTokenizer({ words: ["a", "a"] }, good), /distinct, non-empty strings/);
});
