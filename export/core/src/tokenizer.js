// Tokenization exactly as the bundle's student was trained: the bundle's tokenizer.json run by
// @huggingface/tokenizers (normalizer, pre-tokenizer, WordPiece), then what that library leaves out, done
// here as the Rust `tokenizers` library does it: word-level vocabularies, longest-first truncation to the
// bundle's max length, and the post-processor's special-token template.
import { Tokenizer } from "@huggingface/tokenizers";

import { FNV_BASIS, KeyTable, fnvStep, lowerAscii } from "./keytable.js";
import { vocabularySize } from "./manifest.js";

// A word-level vocabulary is a WordPiece vocabulary whose continuation prefix never matches: a word is either
// in the vocabulary whole or becomes the unknown token, which is what WordLevel does.
const NEVER_A_PREFIX = "\u0000kdedge-no-subwords\u0000";

// A word longer than every vocabulary entry is the unknown token at once: WordPiece's greedy longest-match search over
// a long word costs the cube of its length in @huggingface/tokenizers (a 100,000-letter word took minutes).
// For the same reason a WordPiece word is the unknown token past MAX_WORD_CHARS characters (BERT's limit is 100).
const MAX_WORD_CHARS = 1000;
function asSupportedModel(tokenizerJson) {
  const model = tokenizerJson.model;
  if (model.type === "WordPiece" && (model.max_input_chars_per_word ?? 100) > MAX_WORD_CHARS) {
    return { ...tokenizerJson, model: { ...model, max_input_chars_per_word: MAX_WORD_CHARS } };
  }
  if (model.type !== "WordLevel") return tokenizerJson;
  let longest = 0;
  for (const word of Object.keys(model.vocab)) longest = Math.max(longest, [...word].length);
  return {
    ...tokenizerJson,
    model: { type: "WordPiece", vocab: model.vocab, unk_token: model.unk_token,
             continuing_subword_prefix: NEVER_A_PREFIX, max_input_chars_per_word: longest },
  };
}

const isId = (v) => Number.isInteger(v) && v >= 0;
const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
const MODELS = ["WordPiece", "WordLevel", "BPE", "Unigram"];

// What @huggingface/tokenizers leaves unchecked until a text needs it, checked at load, as the Rust library does when
// it reads the file: every id an encoding can hold is an integer of the vocabulary, so a bad tokenizer.json is refused
// when a bundle is loaded, never a failure on some later text.
function checkTokenizerJson(json) {
  if (!isObject(json)) throw new Error("expected an object");
  const { model } = json;
  if (!isObject(model) || !MODELS.includes(model.type)) {
    throw new Error(`model.type must be one of ${MODELS.join(", ")}, not ${JSON.stringify(model?.type) ?? "missing"}`);
  }
  if (model.type === "Unigram") {
    if (!Array.isArray(model.vocab) || !model.vocab.every((e) => Array.isArray(e) && typeof e[0] === "string" && Number.isFinite(e[1]))) {
      throw new Error("model.vocab of a Unigram model must be a list of [piece, score] pairs");
    }
    if (!isId(model.unk_id) || model.unk_id >= model.vocab.length) throw new Error("model.unk_id must index model.vocab");
  } else {
    if (!isObject(model.vocab) || !Object.values(model.vocab).every(isId)) {
      throw new Error("model.vocab must map tokens to non-negative integer ids");
    }
    const chars = model.max_input_chars_per_word;
    if (model.type === "WordPiece" && chars !== undefined && !isId(chars)) {
      throw new Error(`model.max_input_chars_per_word must be a non-negative integer, not ${JSON.stringify(chars)?.slice(0, 60)}`);
    }
    const unk = model.unk_token;
    if ((model.type !== "BPE" || unk != null) && !(typeof unk === "string" && Object.hasOwn(model.vocab, unk))) {
      throw new Error(`model.unk_token ${JSON.stringify(unk)?.slice(0, 60) ?? "(missing)"} is not in model.vocab`);
    }
  }
  if (!Array.isArray(json.added_tokens) || !json.added_tokens.every((t) => isObject(t) && isId(t.id) && typeof t.content === "string")) {
    throw new Error('added_tokens must be a list of {"id": ..., "content": ...} tokens');
  }
}

// The special-token template: every item a special token it defines (with ids of the vocabulary) or sequence A or B,
// each sequence once (the Rust library repeats a text named twice, past any truncation, and panics on B in a single
// text's template), and room left for the text within `maxLength` (Python's Classifier counts the same ids, as the
// Rust library does).
function checkTemplate(template, size, maxLength) {
  const specials = isObject(template.special_tokens) ? template.special_tokens : {};
  const added = {};
  for (const kind of ["single", "pair"]) {
    if (!Array.isArray(template[kind])) throw new Error(`post_processor.${kind} must be a list`);
    added[kind] = 0;
    for (const item of template[kind]) {
      const special = item?.SpecialToken;
      const sequence = item?.Sequence;
      if (isObject(special) && isId(special.type_id) && typeof special.id === "string") {
        const ids = Object.hasOwn(specials, special.id) ? specials[special.id]?.ids : undefined;
        if (!Array.isArray(ids) || !ids.every((id) => isId(id) && id < size)) {
          throw new Error(`post_processor: special token ${JSON.stringify(special.id).slice(0, 60)} has no ids in the vocabulary`);
        }
        added[kind] += ids.length;
      } else if (!(isObject(sequence) && (sequence.id === "A" || sequence.id === "B") && isId(sequence.type_id))) {
        throw new Error(`post_processor.${kind} holds ${JSON.stringify(item)?.slice(0, 60)}, not a SpecialToken or Sequence A or B`);
      }
    }
    const times = (id) => template[kind].filter((item) => item?.Sequence?.id === id).length;
    if (times("A") !== 1 || times("B") !== (kind === "pair" ? 1 : 0)) {
      throw new Error(`post_processor.${kind} must hold sequence A once and ${kind === "pair" ? "B once" : "no B"}`);
    }
  }
  for (const kind of ["single", "pair"]) { // after the template is known good, as Python's Classifier checks them
    if (added[kind] >= maxLength) {
      throw new Error(`post_processor.${kind}: its special tokens take ${added[kind]} of the ${maxLength} positions ` +
        "(max_length), leaving none for the text");
    }
  }
}

// RoBERTa's and BERT's fixed post-processors (MPNet and RoBERTa tokenizers use the first) as the template they
// amount to; type ids as the Rust library gives them (read off tokenizers 0.23: RoBERTa's are all 0).
function asTemplate(post) {
  if (!post || !["RobertaProcessing", "BertProcessing"].includes(post.type)) return post;
  const [cls, clsId] = post.cls;
  const [sep, sepId] = post.sep;
  const special = (id, typeId) => ({ SpecialToken: { id, type_id: typeId } });
  const sequence = (id, typeId) => ({ Sequence: { id, type_id: typeId } });
  const b = post.type === "BertProcessing" ? 1 : 0;
  return {
    type: "TemplateProcessing",
    single: [special(cls, 0), sequence("A", 0), special(sep, 0)],
    pair: [special(cls, 0), sequence("A", 0), special(sep, 0),
      ...(post.type === "RobertaProcessing" ? [special(sep, 0)] : []), sequence("B", b), special(sep, b)],
    special_tokens: { [cls]: { id: cls, ids: [clsId], tokens: [cls] }, [sep]: { id: sep, ids: [sepId], tokens: [sep] } },
  };
}

// The common case done directly, with the same ids as @huggingface/tokenizers gives: a text of printable ASCII (and
// tab, newline, carriage return) through a BERT-style tokenizer.json, BertNormalizer (or none), BertPreTokenizer and
// WordPiece (a word-level vocabulary is one, asSupportedModel). On such a text the library's steps reduce to: no
// added token can match (a character that could start one sends the text to the library), the normalizer at most
// lowercases (and turns tab, newline, carriage return into spaces), the pre-tokenizer splits runs of letters and digits
// from each punctuation character, and WordPiece's greedy longest match runs on each word. Anything else: null, and
// the library tokenizes the text.
const SPACE = 1;
const PUNCTUATION = 2;
const WORD = 3;

class AsciiWordPiece {
  // null where the tokenizer.json is not of this kind
  static of(rules, config, library) {
    const { model } = rules;
    if (model.type !== "WordPiece" || typeof model.continuing_subword_prefix !== "string" || model.fuse_unk) return null;
    if (rules.pre_tokenizer?.type !== "BertPreTokenizer") return null;
    if (rules.normalizer !== null && rules.normalizer?.type !== "BertNormalizer") return null;
    if (config.remove_space === true || config.do_lowercase_and_remove_accent) return null;
    const normalizer = rules.normalizer === null ? null : library.normalizer;
    if (normalizer !== null && typeof normalizer !== "function") return null;
    const direct = new AsciiWordPiece(rules, normalizer);
    // null as well for an id beyond what a KeyTable holds
    return direct.firstPieces && direct.laterPieces && Number.isInteger(direct.unkId) ? direct : null;
  }

  constructor(rules, normalizer) {
    const { model } = rules;
    this.lowercase = Boolean(rules.normalizer?.lowercase);
    this.prefix = model.continuing_subword_prefix;
    this.maxChars = model.max_input_chars_per_word ?? 100;
    // the library's maps: the vocabulary with the added tokens over it, and the added tokens by content (and by
    // normalized content where the token is normalized); a token's id is its added token's, else its vocabulary id
    const added = new Map();
    const starts = new Set(); // characters an added token starts with, before and after normalization
    for (const token of rules.added_tokens) {
      added.set(token.content, token.id);
      if (token.content) starts.add(token.content[0]);
      if ((token.normalized ?? !(token.special ?? false)) && normalizer !== null) {
        const normalized = normalizer(token.content);
        added.set(normalized, token.id);
        if (normalized) starts.add(normalized[0]);
      }
    }
    const pieces = Object.keys(model.vocab);
    for (const content of new Set(rules.added_tokens.map((token) => token.content))) {
      if (!Object.hasOwn(model.vocab, content)) pieces.push(content);
    }
    const ids = pieces.map((piece) => (added.has(piece) ? added.get(piece) : model.vocab[piece]));
    const unk = model.unk_token;
    this.unkId = added.get(unk) ?? (Object.hasOwn(model.vocab, unk) ? model.vocab[unk] : undefined);
    // a word's first piece is looked up whole; a later piece as the continuation prefix + the piece, that is among the
    // pieces that start with the prefix, the prefix taken off
    this.firstPieces = KeyTable.of(pieces, ids);
    const later = [];
    const laterIds = [];
    for (let i = 0; i < pieces.length; i++) {
      if (pieces[i].startsWith(this.prefix)) {
        later.push(pieces[i].slice(this.prefix.length));
        laterIds.push(ids[i]);
      }
    }
    this.laterPieces = KeyTable.of(later, laterIds);
    this.hashes = new Int32Array(64); // a word's prefix hashes, grown for longer words
    // what each ASCII character is (0: the text goes to the library)
    this.classes = new Uint8Array(128);
    for (let c = 0; c < 128; c++) {
      const ch = String.fromCharCode(c);
      let cls = 0;
      if (c === 9 || c === 10 || c === 13 || c === 32) cls = SPACE;
      else if (/[0-9A-Za-z]/.test(ch)) cls = WORD;
      else if (c > 32 && c < 127) cls = PUNCTUATION;
      const images = [ch, this.lowercase ? ch.toLowerCase() : ch, cls === SPACE ? " " : ch];
      if (images.some((image) => starts.has(image))) cls = 0;
      this.classes[c] = cls;
    }
  }

  // The text's ids (at least the first `limit`, when only those are kept), or null: the library's text.
  encode(text, limit = Infinity) {
    const { classes } = this;
    const out = [];
    const n = text.length;
    let i = 0;
    while (i < n) {
      const c = text.charCodeAt(i);
      const cls = c < 128 ? classes[c] : 0;
      if (cls === SPACE) {
        i++;
      } else if (cls === PUNCTUATION) {
        if (out.length < limit) this.wordPiece(text, i, i + 1, out);
        i++;
      } else if (cls === WORD) {
        let j = i + 1;
        for (; j < n; j++) {
          const d = text.charCodeAt(j);
          if (d >= 128 || classes[d] !== WORD) break;
        }
        if (out.length < limit) this.wordPiece(text, i, j, out);
        i = j;
      } else {
        return null;
      }
    }
    return out;
  }

  // WordPiece as the library runs it on the word text[s:e] (lowercased when the normalizer lowercases): the longest
  // piece from the start, then the longest continuation piece from where it ended, and so on; a word with no piece
  // at some point (or too long) is the unknown token.
  wordPiece(text, s, e, out) {
    const n = e - s;
    if (n > this.maxChars) {
      out.push(this.unkId);
      return;
    }
    if (this.hashes.length < n) this.hashes = new Int32Array(2 * n);
    const { hashes, lowercase } = this;
    const first = out.length;
    let start = s;
    while (start < e) {
      const table = start === s ? this.firstPieces : this.laterPieces;
      let h = FNV_BASIS;
      for (let k = start; k < e; k++) {
        h = fnvStep(h, lowercase ? lowerAscii(text.charCodeAt(k)) : text.charCodeAt(k));
        hashes[k - start] = h;
      }
      let end = e;
      let id = -1;
      for (; end > start; end--) {
        id = table.get(text, start, end, hashes[end - start - 1], lowercase);
        if (id !== -1) break;
      }
      if (end === start) {
        out.length = first;
        out.push(this.unkId);
        return;
      }
      out.push(id);
      start = end;
    }
  }
}

// A special-token template as parts: constant ids and type ids, or where sequence A or B goes with its type id.
function compileTemplate(template, kind) {
  return template[kind].map((item) => {
    if (item.SpecialToken) {
      const ids = template.special_tokens[item.SpecialToken.id].ids;
      return { ids, typeId: item.SpecialToken.type_id };
    }
    return { sequence: item.Sequence.id, typeId: item.Sequence.type_id };
  });
}

export class BundleTokenizer {
  constructor(tokenizerJson, tokenizerConfig, { maxLength, addSpecialTokens }) {
    checkTokenizerJson(tokenizerJson);
    // padding and truncation are the runtime's (per batch, and to the bundle's max length), never the file's; so are
    // the special tokens (this.template), so the library gets no post-processor of its own to trip over
    const rules = { ...asSupportedModel(tokenizerJson), padding: null, truncation: null, post_processor: null };
    this.tokenizer = new Tokenizer(rules, tokenizerConfig ?? {});
    this.maxLength = maxLength;
    this.addSpecialTokens = addSpecialTokens;
    this.template = addSpecialTokens ? asTemplate(tokenizerJson.post_processor) : null;
    if (this.template && this.template.type !== "TemplateProcessing") {
      throw new Error(`unsupported post-processor ${this.template.type} in tokenizer.json (TemplateProcessing, ` +
        "RobertaProcessing or BertProcessing expected)");
    }
    if (this.template) checkTemplate(this.template, vocabularySize(tokenizerJson), maxLength);
    this.parts = this.template ? { single: compileTemplate(this.template, "single"), pair: compileTemplate(this.template, "pair") } : null;
    this.specials = { single: this.specialCount("single"), pair: this.specialCount("pair") };
    this.ascii = AsciiWordPiece.of(rules, tokenizerConfig ?? {}, this.tokenizer);
  }

  ids(text, limit = Infinity) {
    const ids = this.ascii?.encode(text, limit);
    return ids ?? this.tokenizer.encode(text, { add_special_tokens: false }).ids.map(Number);
  }

  // The largest token type id an encoding of `kind` ("single" or "pair") holds.
  maxTypeId(kind) {
    if (!this.template) return kind === "pair" ? 1 : 0;
    return Math.max(0, ...this.template[kind].map((item) => (item.SpecialToken ?? item.Sequence).type_id));
  }

  // The ids the template adds around the text: a special token may stand for several
  specialCount(kind) {
    return this.parts ? this.parts[kind].reduce((count, part) => count + (part.ids?.length ?? 0), 0) : 0;
  }

  // {ids, typeIds} for one text, or a pair joined into one sequence.
  encode(text, pair = null) {
    if (pair === null) {
      const budget = Math.max(0, this.maxLength - this.specials.single);
      const a = this.ids(text, budget);
      return this.applyTemplate("single", a.length > budget ? a.slice(0, budget) : a, null);
    }
    const [a, b] = truncateLongestFirst(this.ids(text), this.ids(pair), this.maxLength - this.specials.pair);
    return this.applyTemplate("pair", a, b);
  }

  applyTemplate(kind, a, b) {
    const ids = [];
    const typeIds = [];
    if (!this.parts) {
      for (const id of a) { ids.push(id); typeIds.push(0); }
      if (b) for (const id of b) { ids.push(id); typeIds.push(1); }
      return { ids, typeIds };
    }
    for (const part of this.parts[kind]) {
      for (const id of part.ids ?? (part.sequence === "A" ? a : b)) {
        ids.push(id);
        typeIds.push(part.typeId);
      }
    }
    return { ids, typeIds };
  }
}

// The Rust library's LongestFirst for pairs: when both sides exceed half the budget each gets half, and an odd
// token goes to the longer side (the second on a tie); otherwise the shorter side is kept whole.
export function truncateLongestFirst(a, b, budget) {
  budget = Math.max(0, budget);
  if (a.length + b.length <= budget) return [a, b];
  const half = Math.floor(budget / 2);
  const shortest = Math.min(a.length, b.length);
  let n1;
  let n2;
  if (shortest <= half) {
    [n1, n2] = a.length <= b.length ? [a.length, budget - a.length] : [budget - b.length, b.length];
  } else {
    const extra = budget - 2 * half;
    [n1, n2] = a.length > b.length ? [half + extra, half] : [half, half + extra];
  }
  return [a.slice(0, n1), b.slice(0, n2)];
}
