// The n-gram student's tokenizer: text -> ids by the rules in a bundle's manifest (tokenizer.ngram), version 1. The
// rules are written out in export/python/kdedge_runtime/ngram.py and export/schema/README.md; this is the same
// implementation for Node and the browser, and export/schema/ngram-golden.json holds both to the same ids.
// No platform API beyond the language (String.normalize, Unicode property escapes, TextEncoder).

export const NORMALIZATIONS = ["nfkc-lowercase"];
export const SPLITS = ["unicode-words"];
export const HASHES = ["fnv1a-32"];
export const MAX_WORD_NGRAMS = 5;
export const MAX_CHAR_NGRAM = 16;
const MAX_BUCKETS = 2 ** 31 - 1;
export const RULE_FIELDS = ["normalization", "split", "hash", "word_ngrams", "char_ngrams", "buckets"];
export const PAD_ID = 0;

// Rule 2: runs of letters, marks and digits; each punctuation or symbol character alone; anything else separates.
const WORDS = /[\p{L}\p{M}\p{N}]+|[\p{P}\p{S}]/gu;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
const utf8 = new TextEncoder();

const isInt = (v) => typeof v === "number" && Number.isInteger(v);
const shown = (value) => String(JSON.stringify(value) ?? "null").slice(0, 60);

export class NgramRulesError extends Error {
  constructor(message) {
    super(message);
    this.name = "NgramRulesError";
  }
}

// The manifest's tokenizer.ngram checked: one line naming the first wrong field, as kdedge_runtime.ngram.check_rules.
export function checkNgramRules(rules, where) {
  const field = "tokenizer.ngram";
  if (rules === null || typeof rules !== "object" || Array.isArray(rules)) {
    throw new NgramRulesError(`${where}: field '${field}' must be an object, not ${shown(rules)}`);
  }
  const unknown = Object.keys(rules).filter((k) => !RULE_FIELDS.includes(k));
  if (unknown.length) {
    throw new NgramRulesError(`${where}: field '${field}' has rule ${shown(unknown[0])}, which this runtime does not ` +
      `implement (it knows ${RULE_FIELDS.join(", ")})`);
  }
  for (const [name, known] of [["normalization", NORMALIZATIONS], ["split", SPLITS], ["hash", HASHES]]) {
    if (!Object.hasOwn(rules, name)) throw new NgramRulesError(`${where}: field '${field}.${name}' is missing`);
    if (!known.includes(rules[name])) {
      throw new NgramRulesError(`${where}: field '${field}.${name}' must be ${known.map(shown).join(" or ")}, not ` +
        `${shown(rules[name])}`);
    }
  }
  for (const [name, high] of [["word_ngrams", MAX_WORD_NGRAMS], ["buckets", MAX_BUCKETS]]) {
    if (!Object.hasOwn(rules, name)) throw new NgramRulesError(`${where}: field '${field}.${name}' is missing`);
    if (!(isInt(rules[name]) && rules[name] >= 1 && rules[name] <= high)) {
      throw new NgramRulesError(`${where}: field '${field}.${name}' must be an integer from 1 to ${high}, not ` +
        `${shown(rules[name])}`);
    }
  }
  if (!Object.hasOwn(rules, "char_ngrams")) throw new NgramRulesError(`${where}: field '${field}.char_ngrams' is missing`);
  const chars = rules.char_ngrams;
  if (!(Array.isArray(chars) && chars.every((n) => isInt(n) && n >= 1 && n <= MAX_CHAR_NGRAM)
        && new Set(chars).size === chars.length)) {
    throw new NgramRulesError(`${where}: field '${field}.char_ngrams' must be a list of distinct integers from 1 to ` +
      `${MAX_CHAR_NGRAM}, not ${shown(chars)}`);
  }
  return rules;
}

// A manifest's tokenizer block with n-gram rules: the rules, and the fields the rules fix (ids are the text's own,
// padded with 0; a pair's texts are read one at a time), as kdedge_runtime.ngram.check_tokenizer.
export function checkNgramTokenizer(tokenizer, where) {
  checkNgramRules(tokenizer.ngram, where);
  if (tokenizer.add_special_tokens !== false) {
    throw new NgramRulesError(`${where}: field 'tokenizer.add_special_tokens' must be false for n-gram rules`);
  }
  if (tokenizer.pair_encoding === "joint") {
    throw new NgramRulesError(`${where}: field 'tokenizer.pair_encoding' must be null or "separate" for n-gram ` +
      'rules, not "joint"');
  }
  if (tokenizer.pad_token_id !== PAD_ID) {
    throw new NgramRulesError(`${where}: field 'tokenizer.pad_token_id' must be ${PAD_ID} for n-gram rules, not ` +
      `${shown(tokenizer.pad_token_id)}`);
  }
}

// 32-bit FNV-1a of the UTF-8 bytes of `text` (offset basis 2166136261, prime 16777619), as an unsigned integer.
export function fnv1a32(text) {
  let h = 0x811c9dc5;
  for (const byte of utf8.encode(text)) h = Math.imul(h ^ byte, 0x01000193) >>> 0;
  return h >>> 0;
}

// Rule 1: well formed (lone surrogates become U+FFFD), NFKC, lowercased.
export function normalize(text) {
  return text.replace(LONE_SURROGATE, "\uFFFD").normalize("NFKC").toLowerCase();
}

// Rules 1 and 2: the text's words, at most maxWords of them.
export function wordsOf(text, maxWords = null) {
  const words = normalize(text).match(WORDS) ?? [];
  return maxWords === null ? words : words.slice(0, maxWords);
}

export function charNgrams(word, sizes) {
  const marked = Array.from(`<${word}>`); // code points, not UTF-16 units
  const grams = [];
  for (const n of sizes) {
    if (n === marked.length) continue;
    for (let i = 0; i + n <= marked.length; i++) grams.push(marked.slice(i, i + n).join(""));
  }
  return grams;
}

// The word list of an n-gram vocabulary file ({"words": [...]}: distinct, non-empty strings).
export function readVocabulary(json) {
  const words = json !== null && typeof json === "object" ? json.words : undefined;
  if (!(Array.isArray(words) && words.every((w) => typeof w === "string" && w) && new Set(words).size === words.length)) {
    throw new NgramRulesError('"words" must be a list of distinct, non-empty strings');
  }
  return words;
}

// Texts -> ids by a bundle's n-gram rules and word list; encode() has BundleTokenizer's shape for the classifier.
export class NgramTokenizer {
  constructor(vocabularyJson, rules, { maxLength = null } = {}) {
    this.words = readVocabulary(vocabularyJson);
    this.rules = rules;
    this.maxWords = maxLength;
    this.wordIds = new Map(this.words.map((w, i) => [w, PAD_ID + 1 + i]));
    this.bucketOffset = PAD_ID + 1 + this.words.length;
  }

  get vocabularySize() { return this.bucketOffset + this.rules.buckets; }

  hashed(feature) { return this.bucketOffset + (fnv1a32(feature) % this.rules.buckets); }

  ids(text) {
    const words = wordsOf(text, this.maxWords);
    const ids = [];
    for (const w of words) if (this.wordIds.has(w)) ids.push(this.wordIds.get(w));
    for (let n = 2; n <= this.rules.word_ngrams; n++) {
      for (let i = 0; i + n <= words.length; i++) ids.push(this.hashed(words.slice(i, i + n).join(" ")));
    }
    if (this.rules.char_ngrams.length) {
      for (const w of words) for (const g of charNgrams(w, this.rules.char_ngrams)) ids.push(this.hashed(g));
    }
    return ids;
  }

  encode(text) {
    const ids = this.ids(text);
    return { ids, typeIds: ids.map(() => 0) };
  }

  // No special tokens and no token types: the ids are the text's own.
  maxTypeId() { return 0; }

  specialCount() { return 0; }
}
