import assert from "node:assert/strict";
import { test } from "node:test";

import { BundleTokenizer, truncateLongestFirst } from "kdedge-runtime-core";

const seq = (n, base) => Array.from({ length: n }, (_, i) => base + i);

test("longest-first truncation matches the Rust tokenizers library", () => {
  // (budget, lengths) -> lengths, read off tokenizers 0.22 (BERT template, max_length = budget + 3)
  const cases = [
    [8, [3, 20], [3, 5]], [8, [20, 3], [5, 3]], [8, [8, 8], [4, 4]], [8, [9, 8], [4, 4]], [8, [10, 20], [4, 4]],
    [9, [3, 20], [3, 6]], [9, [20, 3], [6, 3]], [9, [8, 8], [4, 5]], [9, [9, 8], [5, 4]], [9, [8, 9], [4, 5]],
    [9, [10, 20], [4, 5]], [9, [20, 10], [5, 4]], [9, [5, 5], [4, 5]], [9, [4, 6], [4, 5]], [9, [2, 3], [2, 3]],
  ];
  for (const [budget, [n1, n2], expected] of cases) {
    const [a, b] = truncateLongestFirst(seq(n1, 100), seq(n2, 200), budget);
    assert.deepEqual([a.length, b.length], expected, `budget ${budget}, lengths ${n1}, ${n2}`);
    assert.deepEqual(a, seq(n1, 100).slice(0, a.length)); // truncation keeps the start
  }
});

const vocab = { "[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, hello: 4, world: 5, "##s": 6, cafe: 7, "!": 8 };
const tokenizerJson = (model, postProcessor) => ({
  version: "1.0", truncation: null, padding: null, added_tokens: [],
  normalizer: { type: "BertNormalizer", clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
  pre_tokenizer: { type: "BertPreTokenizer" }, post_processor: postProcessor, decoder: null, model,
});
const bertTemplate = {
  type: "TemplateProcessing",
  single: [{ SpecialToken: { id: "[CLS]", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }, { SpecialToken: { id: "[SEP]", type_id: 0 } }],
  pair: [{ SpecialToken: { id: "[CLS]", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }, { SpecialToken: { id: "[SEP]", type_id: 0 } },
    { Sequence: { id: "B", type_id: 1 } }, { SpecialToken: { id: "[SEP]", type_id: 1 } }],
  special_tokens: { "[CLS]": { id: "[CLS]", ids: [2], tokens: ["[CLS]"] }, "[SEP]": { id: "[SEP]", ids: [3], tokens: ["[SEP]"] } },
};

test("word-level vocabularies: whole words or the unknown token, never subwords", () => {
  const tok = new BundleTokenizer(tokenizerJson({ type: "WordLevel", vocab, unk_token: "[UNK]" }, null),
    {}, { maxLength: 4, addSpecialTokens: false });
  assert.deepEqual(tok.encode("Hello worlds! Café").ids, [4, 1, 8, 7]); // "worlds" is not "world" + "##s"
  assert.deepEqual(tok.encode("hello hello hello hello hello").ids, [4, 4, 4, 4]); // truncated to max length
  assert.deepEqual(tok.encode("").ids, []);
});

test("WordPiece with the special-token template and pair type ids", () => {
  const tok = new BundleTokenizer(tokenizerJson({ type: "WordPiece", vocab, unk_token: "[UNK]",
    continuing_subword_prefix: "##", max_input_chars_per_word: 100 }, bertTemplate), {}, { maxLength: 7, addSpecialTokens: true });
  assert.deepEqual(tok.encode("hello worlds"), { ids: [2, 4, 5, 6, 3], typeIds: [0, 0, 0, 0, 0] });
  assert.deepEqual(tok.encode("hello", "world !"), { ids: [2, 4, 3, 5, 8, 3], typeIds: [0, 0, 0, 1, 1, 1] });
  assert.deepEqual(tok.encode("hello hello hello", "world world world").ids, [2, 4, 4, 3, 5, 5, 3]);
  assert.deepEqual(tok.encode("").ids, [2, 3]);
});

test("RoBERTa's and BERT's fixed post-processors, as the Rust library applies them", () => {
  // Expected ids, type ids and truncation read off tokenizers 0.23 with all-mpnet-base-v2's tokenizer (RobertaProcessing)
  // and the same with a BertProcessing swapped in, mapped to this small vocabulary.
  const words = { "<s>": 0, "<pad>": 1, "</s>": 2, "[UNK]": 3, a: 10, gorgeous: 11, film: 12, yes: 13, it: 14, is: 15,
    one: 20, two: 21, three: 22, four: 23, five: 24, six: 25, seven: 26, eight: 27, nine: 28, ten: 29,
    b: 31, c: 32, d: 33, e: 34, f: 35, g: 36, h: 37 };
  const model = { type: "WordPiece", vocab: words, unk_token: "[UNK]", continuing_subword_prefix: "##", max_input_chars_per_word: 100 };
  const padded = { ...tokenizerJson(model, null), padding: { strategy: { Fixed: 128 }, pad_id: 1, pad_token: "<pad>" } };
  const roberta = new BundleTokenizer({ ...padded, post_processor: { type: "RobertaProcessing", sep: ["</s>", 2],
    cls: ["<s>", 0], trim_offsets: true, add_prefix_space: false } }, {}, { maxLength: 12, addSpecialTokens: true });
  assert.deepEqual(roberta.encode("a gorgeous film"), { ids: [0, 10, 11, 12, 2], typeIds: [0, 0, 0, 0, 0] });
  assert.deepEqual(roberta.encode("a gorgeous film", "yes it is"),
    { ids: [0, 10, 11, 12, 2, 2, 13, 14, 15, 2], typeIds: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0] });
  assert.deepEqual(roberta.encode("one two three four five six seven eight nine ten", "a b c d e f g h").ids,
    [0, 20, 21, 22, 23, 2, 2, 10, 31, 32, 33, 2]);
  const bert = new BundleTokenizer({ ...padded, post_processor: { type: "BertProcessing", sep: ["</s>", 2],
    cls: ["<s>", 0] } }, {}, { maxLength: 12, addSpecialTokens: true });
  assert.deepEqual(bert.encode("a gorgeous film", "yes it is"),
    { ids: [0, 10, 11, 12, 2, 13, 14, 15, 2], typeIds: [0, 0, 0, 0, 0, 1, 1, 1, 1] });
  assert.deepEqual(bert.encode("one two three four five six seven eight nine ten", "a b c d e f g h").typeIds,
    [0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1]);
});

// A seeded text of printable ASCII (and tab, newline, carriage return, now and then another control), with words of
// the vocabulary, pieces, brackets that could start a special token, upper case.
function asciiTexts(count, seed, words) {
  let state = seed;
  const rnd = () => ((state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const chars = "abcxyzHWLO0189 \t\n\r[]#<>/!?.,'\"-_`~^|\\{}()@$%&*+=:;\u0001\u007f";
  return Array.from({ length: count }, () => {
    let text = "";
    for (let n = Math.floor(rnd() * 30); n > 0; n--) {
      text += rnd() < 0.3 ? words[Math.floor(rnd() * words.length)] : chars[Math.floor(rnd() * chars.length)];
    }
    return text;
  });
}

test("an ASCII text takes the direct WordPiece path and gets the library's ids", () => {
  const pieces = { "[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4, hello: 5, world: 6, "##s": 7, un: 8,
    "##aff": 9, "##able": 10, "!": 11, ".": 12, a: 13, "##b": 14, "##c": 15, ab: 16, "##bc": 17, x: 18, "##x": 19,
    Hello: 20, "##": 21, "#": 22, "[": 23, "]": 24, "9": 25, "##1": 26 };
  const special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"].map((content) => ({ id: pieces[content], content,
    single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }));
  const model = { type: "WordPiece", vocab: pieces, unk_token: "[UNK]", continuing_subword_prefix: "##", max_input_chars_per_word: 9 };
  const base = { ...tokenizerJson(model, bertTemplate), added_tokens: special };
  const variants = {
    bert: base,
    cased: { ...base, normalizer: { ...base.normalizer, lowercase: false } },
    "no normalizer": { ...base, normalizer: null },
    "normalized added tokens": { ...base, added_tokens: [...special.map((t) => ({ ...t, normalized: true })),
      { id: 30, content: "HeLLo", normalized: true, special: false }, { id: 31, content: "xx", special: false }] },
    "an added token over a piece": { ...base, added_tokens: [...special, { id: 40, content: "hello", special: false, normalized: false }] },
    "no continuation prefix": { ...base, model: { ...model, continuing_subword_prefix: "" } },
    "word level": { ...base, model: { type: "WordLevel", vocab: pieces, unk_token: "[UNK]" } },
  };
  const texts = asciiTexts(3000, 49, [...Object.keys(pieces), "unaffable", "abc", "xxxx", "HELLO", "[cls]", "[MASK]", "hello!"]);
  for (const [name, json] of Object.entries(variants)) {
    const tok = new BundleTokenizer(json, {}, { maxLength: 16, addSpecialTokens: true });
    assert.ok(tok.ascii, `${name}: the direct path is taken`);
    let direct = 0;
    for (const text of texts) {
      const ids = tok.ascii.encode(text);
      if (ids === null) continue; // not for the direct path (a control, a character that could start an added token)
      direct++;
      assert.deepEqual(ids, tok.tokenizer.encode(text, { add_special_tokens: false }).ids, `${name}: ${JSON.stringify(text)}`);
    }
    assert.ok(direct > 300, `${name}: only ${direct} texts took the direct path`);
  }
  // what it does not implement goes to the library
  assert.equal(new BundleTokenizer({ ...base, model: { ...model, fuse_unk: true } }, {}, { maxLength: 8, addSpecialTokens: false }).ascii, null);
  assert.equal(new BundleTokenizer(base, { remove_space: true }, { maxLength: 8, addSpecialTokens: false }).ascii, null);
  assert.equal(new BundleTokenizer({ ...base, pre_tokenizer: { type: "Whitespace" } }, {}, { maxLength: 8, addSpecialTokens: false }).ascii, null);
  assert.equal(new BundleTokenizer(base, {}, { maxLength: 8, addSpecialTokens: false }).ascii.encode("café"), null);
});
