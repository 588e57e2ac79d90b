// Tokenization exactly as the bundle's student was trained: the bundle's tokenizer.json run by
// @huggingface/tokenizers (normalizer, pre-tokenizer, WordPiece), then what that library leaves out, done
// here as the Rust `tokenizers` library does it: word-level vocabularies, longest-first truncation to the
// bundle's max length, and the post-processor's special-token template.
import { Tokenizer } from "@huggingface/tokenizers";

// A word-level vocabulary is a WordPiece vocabulary whose continuation prefix never matches: a word is either
// in the vocabulary whole or becomes the unknown token, which is what WordLevel does.
const NEVER_A_PREFIX = "\u0000kdedge-no-subwords\u0000";

function asSupportedModel(tokenizerJson) {
  const model = tokenizerJson.model;
  if (model.type !== "WordLevel") return tokenizerJson;
  return {
    ...tokenizerJson,
    model: { type: "WordPiece", vocab: model.vocab, unk_token: model.unk_token,
             continuing_subword_prefix: NEVER_A_PREFIX, max_input_chars_per_word: Number.MAX_SAFE_INTEGER },
  };
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
    // padding and truncation are the runtime's (per batch, and to the bundle's max length), never the file's
    const rules = { ...asSupportedModel(tokenizerJson), padding: null, truncation: null };
    this.tokenizer = new Tokenizer(rules, tokenizerConfig ?? {});
    this.maxLength = maxLength;
    this.addSpecialTokens = addSpecialTokens;
    this.template = addSpecialTokens ? asTemplate(tokenizerJson.post_processor) : null;
    if (this.template && this.template.type !== "TemplateProcessing") {
      throw new Error(`unsupported post-processor ${this.template.type} in tokenizer.json (TemplateProcessing, ` +
        "RobertaProcessing or BertProcessing expected)");
    }
  }

  ids(text) {
    return this.tokenizer.encode(text, { add_special_tokens: false }).ids.map(Number);
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
