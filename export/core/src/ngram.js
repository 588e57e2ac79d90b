// The n-gram student's tokenizer: text -> ids by the rules in a bundle's manifest (tokenizer.ngram), version 1. The
// rules are written out in export/python/kdedge_runtime/ngram.py and export/schema/README.md; this is the same
// implementation for Node and the browser, and export/schema/ngram-golden.json holds both to the same ids.
// No platform API beyond the language (String.normalize, Unicode property escapes).

import { FNV_BASIS, KeyTable, fnvStep } from "./keytable.js";

export const NORMALIZATIONS = ["nfkc-lowercase"];
export const SPLITS = ["unicode-words"];
export const HASHES = ["fnv1a-32"];
export const MAX_WORD_NGRAMS = 5;
export const MAX_CHAR_NGRAM = 16;
const MAX_BUCKETS = 2 ** 31 - 1;
// every field is required but "scopes" (rule 5), which older bundles do not have: absent is the same as []
export const RULE_FIELDS = ["normalization", "split", "hash", "word_ngrams", "char_ngrams", "buckets", "scopes"];
export const SCOPE_FIELDS = ["cues", "ends", "words", "prefix"];
export const MAX_SCOPES = 8;
export const MAX_SCOPE_WORDS = 64;
export const PAD_ID = 0;

// Rule 2: runs of letters, marks and digits; each punctuation or symbol character alone; anything else separates.
const WORDS = /[\p{L}\p{M}\p{N}]+|[\p{P}\p{S}]/gu;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

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
  onlyKnown(rules, RULE_FIELDS, `${where}: field '${field}`, "rule");
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
  if (Object.hasOwn(rules, "scopes")) checkScopes(rules.scopes, `${where}: field '${field}.scopes`);
  return rules;
}

// `value` must be an object of `fields` alone; `at` names it, up to its closing quote.
function onlyKnown(value, fields, at, kind) {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new NgramRulesError(`${at}' must be an object, not ${shown(value)}`);
  }
  const unknown = Object.keys(value).filter((k) => !fields.includes(k));
  if (unknown.length) {
    throw new NgramRulesError(`${at}' has ${kind} ${shown(unknown[0])}, which this runtime does not implement (it ` +
      `knows ${fields.join(", ")})`);
  }
}

// A list of distinct strings, each one word by rules 1 and 2 (so that a word of the text can equal it).
function isWordList(value) {
  const isOneWord = (w) => {
    const words = wordsOf(w);
    return words.length === 1 && words[0] === w;
  };
  return Array.isArray(value) && new Set(value).size === value.length
    && value.every((w) => typeof w === "string" && isOneWord(w));
}

// Rule 5's scopes checked; `at` is "<where>: field '<field>.scopes" (the closing quote comes after the index).
function checkScopes(scopes, at) {
  if (!(Array.isArray(scopes) && scopes.length <= MAX_SCOPES)) {
    throw new NgramRulesError(`${at}' must be a list of at most ${MAX_SCOPES} scopes, not ${shown(scopes)}`);
  }
  const prefixes = [];
  scopes.forEach((scope, i) => {
    const here = `${at}[${i}]`;
    onlyKnown(scope, SCOPE_FIELDS, here, "field");
    const missing = SCOPE_FIELDS.filter((k) => !Object.hasOwn(scope, k));
    if (missing.length) throw new NgramRulesError(`${here}.${missing[0]}' is missing`);
    for (const name of ["cues", "ends"]) {
      if (!isWordList(scope[name]) || (name === "cues" && !scope[name].length)) {
        throw new NgramRulesError(`${here}.${name}' must be a list of distinct words, each one lowercase word by ` +
          `the split rule${name === "ends" ? "" : " (at least one)"}, not ${shown(scope[name])}`);
      }
    }
    const both = scope.cues.filter((cue) => scope.ends.includes(cue));
    if (both.length) throw new NgramRulesError(`${here}' has ${shown(both[0])} both as a cue and as an end`);
    if (!(isInt(scope.words) && scope.words >= 1 && scope.words <= MAX_SCOPE_WORDS)) {
      throw new NgramRulesError(`${here}.words' must be an integer from 1 to ${MAX_SCOPE_WORDS}, not ` +
        `${shown(scope.words)}`);
    }
    const { prefix } = scope;
    if (!(typeof prefix === "string" && prefix && prefix.replace(LONE_SURROGATE, "\uFFFD") === prefix)) {
      throw new NgramRulesError(`${here}.prefix' must be a non-empty string with no lone surrogate, not ` +
        `${shown(prefix)}`);
    }
    if (prefixes.includes(prefix)) {
      throw new NgramRulesError(`${here}.prefix' ${shown(prefix)} is another scope's prefix too`);
    }
    prefixes.push(prefix);
  });
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
  return fnvFeed(FNV_BASIS, text) >>> 0;
}

// The FNV-1a state `h` fed the characters text[start:end], all ASCII (each its own UTF-8 byte).
function fnvRange(h, text, start, end) {
  for (let i = start; i < end; i++) h = fnvStep(h, text.charCodeAt(i));
  return h;
}

// The FNV-1a state `h` fed the UTF-8 bytes of `text` as TextEncoder writes them (a lone surrogate as U+FFFD), byte by
// byte with no bytes made; the state is kept as a signed 32-bit integer (>>> 0 gives the hash).
function fnvFeed(h, text) {
  const n = text.length;
  for (let i = 0; i < n; i++) {
    let c = text.charCodeAt(i);
    if (c < 0x80) {
      h = Math.imul(h ^ c, 0x01000193);
      continue;
    }
    if (c < 0x800) {
      h = Math.imul(h ^ (0xc0 | (c >> 6)), 0x01000193);
      h = Math.imul(h ^ (0x80 | (c & 0x3f)), 0x01000193);
      continue;
    }
    if (c >= 0xd800 && c <= 0xdfff) {
      const d = c <= 0xdbff && i + 1 < n ? text.charCodeAt(i + 1) : 0;
      if (d >= 0xdc00 && d <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
        h = Math.imul(h ^ (0xf0 | (c >> 18)), 0x01000193);
        h = Math.imul(h ^ (0x80 | ((c >> 12) & 0x3f)), 0x01000193);
        h = Math.imul(h ^ (0x80 | ((c >> 6) & 0x3f)), 0x01000193);
        h = Math.imul(h ^ (0x80 | (c & 0x3f)), 0x01000193);
        continue;
      }
      c = 0xfffd;
    }
    h = Math.imul(h ^ (0xe0 | (c >> 12)), 0x01000193);
    h = Math.imul(h ^ (0x80 | ((c >> 6) & 0x3f)), 0x01000193);
    h = Math.imul(h ^ (0x80 | (c & 0x3f)), 0x01000193);
  }
  return h;
}

// (h >>> 0) % buckets, in floating point: the quotient of two integers below 2**32 is never rounded up to the next
// integer, so this is exact, and it spares the slow remainder of a number beyond the signed 32-bit range.
function bucketOf(h, buckets) {
  const u = h >>> 0;
  return u - Math.floor(u / buckets) * buckets;
}

// Rule 1: well formed (lone surrogates become U+FFFD), NFKC, lowercased.
export function normalize(text) {
  return text.replace(LONE_SURROGATE, "\uFFFD").normalize("NFKC").toLowerCase();
}

// Rules 1 and 2: the text's words, at most maxWords of them.
export function wordsOf(text, maxWords = null) {
  const words = asciiWordsOf(text, maxWords) ?? normalize(text).match(WORDS) ?? [];
  return maxWords === null ? words : words.slice(0, maxWords);
}

// The same words of an ASCII text, found without the regular expressions (null for any other text): NFKC leaves ASCII
// as it is, lowercasing changes only A-Z, letters and digits are [a-z0-9], and every other printable character is
// punctuation or a symbol (a word alone); controls and the space separate.
const ASCII_WORD = 1;
const ASCII_SYMBOL = 2;
const ASCII_CLASSES = Uint8Array.from({ length: 128 }, (_, c) =>
  (/[0-9A-Za-z]/.test(String.fromCharCode(c)) ? ASCII_WORD : c > 32 && c < 127 ? ASCII_SYMBOL : 0));
function asciiWordsOf(text, maxWords) {
  const n = text.length;
  for (let i = 0; i < n; i++) if (text.charCodeAt(i) >= 128) return null;
  const limit = Number.isInteger(maxWords) && maxWords >= 0 ? maxWords : Infinity;
  const lower = text.toLowerCase();
  const words = [];
  for (let i = 0; i < n && words.length < limit;) {
    const cls = ASCII_CLASSES[lower.charCodeAt(i)];
    if (cls === ASCII_WORD) {
      let j = i + 1;
      while (j < n && ASCII_CLASSES[lower.charCodeAt(j)] === ASCII_WORD) j++;
      words.push(lower.slice(i, j));
      i = j;
    } else {
      if (cls === ASCII_SYMBOL) words.push(lower[i]);
      i++;
    }
  }
  return words;
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

// encode()'s {ids, typeIds}, BundleTokenizer's shape. The type ids are all 0, and made only when read: no n-gram model
// has a token_type_ids input, and an array per call is a few percent of a call.
class NgramEncoding {
  constructor(ids) { this.ids = ids; }

  get typeIds() { return new Array(this.ids.length).fill(0); }
}

// Texts -> ids by a bundle's n-gram rules and word list; encode() has BundleTokenizer's shape for the classifier.
export class NgramTokenizer {
  constructor(vocabularyJson, rules, { maxLength = null } = {}) {
    this.words = readVocabulary(vocabularyJson);
    this.rules = rules;
    this.maxWords = maxLength;
    this.wordIds = new Map(this.words.map((w, i) => [w, PAD_ID + 1 + i]));
    this.wordTable = KeyTable.of(this.words, this.words.map((w, i) => PAD_ID + 1 + i)); // the same, for asciiWords
    this.bucketOffset = PAD_ID + 1 + this.words.length;
    // rule 5, ready to read: each scope's width and its prefix's FNV state (a feature's hash goes on with the word)
    this.scopes = (rules.scopes ?? []).map((s) => ({ width: s.words, prefix: fnvFeed(FNV_BASIS, s.prefix) }));
    // every scope's cues and ends in one map, a word's value its roles (bit 2k: a cue of scope k, bit 2k + 1: an end);
    // for an ASCII text's words as ranges, the same as a KeyTable behind a filter of first character and length
    // (bit min(length, 31) of [first character]) that most words fail
    this.roleOf = new Map();
    (rules.scopes ?? []).forEach(({ cues, ends }, k) => {
      for (const w of cues) this.roleOf.set(w, (this.roleOf.get(w) ?? 0) | (1 << (2 * k)));
      for (const w of ends) this.roleOf.set(w, (this.roleOf.get(w) ?? 0) | (2 << (2 * k)));
    });
    this.scopeRoles = KeyTable.of([...this.roleOf.keys()], [...this.roleOf.values()]);
    this.scopeFilter = new Int32Array(128);
    for (const w of this.roleOf.keys()) {
      if (w.charCodeAt(0) < 128) this.scopeFilter[w.charCodeAt(0)] |= 1 << Math.min(w.length, 31);
    }
  }

  get vocabularySize() { return this.bucketOffset + this.rules.buckets; }

  hashed(feature) { return this.bucketOffset + (fnv1a32(feature) % this.rules.buckets); }

  // The ids in rule order: the words found in the vocabulary, then each n-gram size's word n-grams (joined by a space),
  // then each word's character n-grams, then each scope's features (rule 5). An n-gram's hash is its first word's FNV
  // state fed the rest, so nothing is joined; the bytes hashed are those of the joined text (a scope's: prefix + word).
  ids(text) {
    const { buckets, word_ngrams: longest, char_ngrams: sizes } = this.rules;
    const offset = this.bucketOffset;
    const ascii = this.asciiWords(text);
    let words = null;
    let ids;
    let count;
    let states; // each word's FNV state (an n-gram's goes on from its first word's)
    if (ascii !== null) {
      ({ found: ids, count, states } = ascii);
    } else {
      words = wordsOf(text, this.maxWords);
      count = words.length;
      ids = [];
      for (let i = 0; i < count; i++) {
        const id = this.wordIds.get(words[i]);
        if (id !== undefined) ids.push(id);
      }
      if (longest >= 2) states = words.map((w) => fnvFeed(FNV_BASIS, w));
    }
    if (longest >= 2 && count >= 2) {
      // each n-gram's state goes on from the (n-1)-gram's at the same start; the words' own states stay for rule 5
      const chain = longest > 2 ? states.slice() : states;
      for (let n = 2; n <= longest && n <= count; n++) {
        for (let i = 0; i + n <= count; i++) {
          const j = i + n - 1;
          const h0 = Math.imul(chain[i] ^ 0x20, 0x01000193);
          const h = ascii !== null ? fnvRange(h0, ascii.lower, ascii.starts[j], ascii.ends[j]) : fnvFeed(h0, words[j]);
          if (n < longest) chain[i] = h;
          ids.push(offset + bucketOf(h, buckets));
        }
      }
    }
    if (sizes.length) {
      words ??= ascii.starts.map((start, i) => ascii.lower.slice(start, ascii.ends[i]));
      for (const w of words) {
        const marked = Array.from(`<${w}>`); // code points, not UTF-16 units
        for (const n of sizes) {
          if (n === marked.length) continue;
          for (let i = 0; i + n <= marked.length; i++) {
            let h = FNV_BASIS;
            for (let k = i; k < i + n; k++) h = fnvFeed(h, marked[k]);
            ids.push(offset + bucketOf(h, buckets));
          }
        }
      }
    }
    if (this.scopes.length) {
      // the words that are some scope's cue or end, with their roles, found once for every scope (an ASCII text's as
      // ranges of its lowercased text, by the hashes its word pass made); each scope is read from its first cue on
      const marked = []; // word index, its roles
      for (let w = 0; w < count; w++) {
        let roles;
        if (ascii !== null) {
          const start = ascii.starts[w];
          const stop = ascii.ends[w];
          if (((this.scopeFilter[ascii.lower.charCodeAt(start)] >>> Math.min(stop - start, 31)) & 1) === 0) continue;
          roles = this.scopeRoles.get(ascii.lower, start, stop, states[w], false);
        } else {
          roles = this.roleOf.get(words[w]) ?? 0;
        }
        if (roles > 0) marked.push(w, roles);
      }
      for (let k = 0; k < this.scopes.length; k++) {
        const { width, prefix } = this.scopes[k];
        let m = 0;
        while (m < marked.length && ((marked[m + 1] >> (2 * k)) & 1) === 0) m += 2; // its first cue
        let left = 0;
        for (let w = m < marked.length ? marked[m] : count; w < count; w++) {
          let role = 0;
          if (m < marked.length && marked[m] === w) {
            role = (marked[m + 1] >> (2 * k)) & 3;
            m += 2;
          }
          if (role & 1) {
            left = width;
          } else if (role & 2) {
            left = 0;
          } else if (left) {
            const h = ascii !== null ? fnvRange(prefix, ascii.lower, ascii.starts[w], ascii.ends[w])
              : fnvFeed(prefix, words[w]);
            ids.push(offset + bucketOf(h, buckets));
            left--;
          }
        }
      }
    }
    return ids;
  }

  // An ASCII text's words (as asciiWordsOf finds them) as ranges of the lowercased text, with each word's FNV state
  // and the ids of those in the vocabulary, found in one pass with no word made; null for any other text.
  asciiWords(text) {
    if (this.wordTable === null) return null;
    const n = text.length;
    for (let i = 0; i < n; i++) if (text.charCodeAt(i) >= 128) return null;
    const max = this.maxWords;
    if (!(max === null || (Number.isInteger(max) && max >= 0))) return null;
    const limit = max ?? Infinity;
    const lower = text.toLowerCase();
    const starts = [];
    const ends = [];
    const states = [];
    const found = [];
    for (let i = 0; i < n && starts.length < limit;) {
      const c = lower.charCodeAt(i);
      const cls = ASCII_CLASSES[c];
      if (cls === 0) {
        i++;
        continue;
      }
      let h = fnvStep(FNV_BASIS, c);
      let j = i + 1;
      if (cls === ASCII_WORD) {
        for (; j < n; j++) {
          const d = lower.charCodeAt(j);
          if (ASCII_CLASSES[d] !== ASCII_WORD) break;
          h = fnvStep(h, d);
        }
      }
      const id = this.wordTable.get(lower, i, j, h, false);
      if (id !== -1) found.push(id);
      starts.push(i);
      ends.push(j);
      states.push(h);
      i = j;
    }
    return { lower, starts, ends, states, found, count: starts.length };
  }

  encode(text) {
    return new NgramEncoding(this.ids(text));
  }

  // No special tokens and no token types: the ids are the text's own.
  maxTypeId() { return 0; }

  specialCount() { return 0; }
}
