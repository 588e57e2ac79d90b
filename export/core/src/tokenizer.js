// Tokenization exactly as the bundle's student was trained: the bundle's tokenizer.json run by
// @huggingface/tokenizers (normalizer, pre-tokenizer, WordPiece), then what that library leaves out, done
// here as the Rust `tokenizers` library does it: word-level vocabularies, longest-first truncation to the
// bundle's max length, and the post-processor's special-token template.
import { Tokenizer } from "@huggingface/tokenizers";

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

// The special-token template: every item a special token it defines (with ids of the vocabulary) or sequence A or B.
function checkTemplate(template, size) {
  const specials = isObject(template.special_tokens) ? template.special_tokens : {};
  for (const kind of ["single", "pair"]) {
    if (!Array.isArray(template[kind])) throw new Error(`post_processor.${kind} must be a list`);
    for (const item of template[kind]) {
      const special = item?.SpecialToken;
      const sequence = item?.Sequence;
      if (isObject(special) && isId(special.type_id) && typeof special.id === "string") {
        const ids = Object.hasOwn(specials, special.id) ? specials[special.id]?.ids : undefined;
        if (!Array.isArray(ids) || !ids.every((id) => isId(id) && id < size)) {
          throw new Error(`post_processor: special token ${JSON.stringify(special.id).slice(0, 60)} has no ids in the vocabulary`);
        }
      } else if (!(isObject(sequence) && (sequence.id === "A" || sequence.id === "B") && isId(sequence.type_id))) {
        throw new Error(`post_processor.${kind} holds ${JSON.stringify(item)?.slice(0, 60)}, not a SpecialToken or Sequence A or B`);
      }
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
    if (this.template) checkTemplate(this.template, vocabularySize(tokenizerJson));
  }

  ids(text) {
    return this.tokenizer.encode(text, { add_special_tokens: false }).ids.map(Number);
  }

  // The largest token type id an encoding of `kind` ("single" or "pair") holds.
  maxTypeId(kind) {
    if (!this.template) return kind === "pair" ? 1 : 0;
    return Math.max(0, ...this.template[kind].map((item) => (item.SpecialToken ?? item.Sequence).type_id));
  }

  specialCount(kind) {
    return this.template ? this.template[kind].filter((item) => item.SpecialToken).length : 0;
  }

  // {ids, typeIds} for one text, or a pair joined into one sequence.
  encode(text, pair = null) {
    if (pair === null) {
      const a = this.ids(text).slice(0, Math.max(0, this.maxLength - this.specialCount("single")));
      return this.applyTemplate("single", a, null);
    }
    const [a, b] = truncateLongestFirst(this.ids(text), this.ids(pair), this.maxLength - this.specialCount("pair"));
    return this.applyTemplate("pair", a, b);
  }

  applyTemplate(kind, a, b) {
    if (!this.template) {
      return { ids: [...a, ...(b ?? [])], typeIds: [...a.map(() => 0), ...(b ?? []).map(() => 1)] };
    }
    const ids = [];
    const typeIds = [];
    for (const item of this.template[kind]) {
      if (item.SpecialToken) {
        for (const id of this.template.special_tokens[item.SpecialToken.id].ids) {
          ids.push(id);
          typeIds.push(item.SpecialToken.type_id);
        }
      } else {
        const sequence = item.Sequence.id === "A" ? a : b;
        for (const id of sequence) {
          ids.push(id);
          typeIds.push(item.Sequence.type_id);
        }
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
