// A bundle is untrusted input: its manifest is checked field by field before anything else is read, by the rules of
// export/schema/manifest.schema.json written out by hand. The field lists, their order and the messages mirror
// kdedge_runtime (export/python/kdedge_runtime/manifest.py), so every runtime (Python, Node, the browser) refuses
// the same bundles in the same words, and exactly those the schema refuses (export/node/test/schema.test.js and
// tests/test_schema.py hold them to it). No platform API is used here.
import { checkNgramTokenizer } from "./ngram.js";

export const BUNDLE_FORMAT = "kdedge-bundle/1";
// The inputs a runtime knows how to feed.
export const INPUT_NAMES = ["input_ids", "attention_mask", "token_type_ids", "input_ids_b", "attention_mask_b"];
const MAX_INDEX = 2 ** 31 - 1; // the largest max_length and pad_token_id (tokenizers and ONNX Runtime index with 32 bits)
// A file named in the manifest: a relative path inside the bundle folder, read the same way from a disk and a URL
// (no "..", no leading "/", no backslash, drive colon, percent escape, query or fragment).
const FILE_NAME = /^(?!\/)(?!(?:.*\/)?\.\.(?:\/|$))[^\\:%?#\u0000-\u001f]+$/u;

export class BundleError extends Error {
  constructor(message) {
    super(message);
    this.name = "BundleError";
  }
}

const isInt = (v) => Number.isInteger(v) && typeof v === "number";
const isStrings = (v) => Array.isArray(v) && v.every((x) => typeof x === "string");
export const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
const KINDS = {
  string: ["a string", (v) => typeof v === "string"],
  boolean: ["true or false", (v) => typeof v === "boolean"],
  number: ["a number", (v) => typeof v === "number"],
  object: ["an object", isObject],
  strings: ["a list of strings", isStrings],
  count: ["a positive integer", (v) => isInt(v) && v > 0],
  id: ["a non-negative integer", (v) => isInt(v) && v >= 0],
  size: ["a non-negative integer", (v) => isInt(v) && v >= 0],
  pairing: ['null, "joint" or "separate"', (v) => v === null || v === "joint" || v === "separate"],
  names: ['a list of {"name": "..."} objects', (v) => Array.isArray(v) && v.every((x) => isObject(x) && typeof x.name === "string")],
  sha256: ["a sha256 hex digest", (v) => typeof v === "string" && /^[0-9a-f]{64}$/.test(v)],
  columns: ["a list of 2 or 3 column names or positions", (v) => Array.isArray(v) && v.length >= 2 && v.length <= 3
    && v.every((c) => typeof c === "string" || (isInt(c) && c >= 0))],
  label_values: ["null or a list of strings", (v) => v === null || isStrings(v)],
};
const BOUNDED = new Set(["count", "id"]); // at most MAX_INDEX
// The fields a runtime reads to load and run a bundle, and what each must be.
export const MANIFEST_FIELDS = [
  [["format"], "string"], [["task", "name"], "string"], [["task", "is_pair"], "boolean"],
  [["task", "is_regression"], "boolean"], [["label_names"], "strings"], [["max_length"], "count"],
  [["tokenizer", "file"], "string"], [["tokenizer", "add_special_tokens"], "boolean"],
  [["tokenizer", "pair_encoding"], "pairing"], [["tokenizer", "pad_token_id"], "id"], [["inputs"], "names"],
  [["outputs"], "names"], [["files", "model.onnx", "sha256"], "sha256"],
];
// Fields a bundle may leave out but that must be well formed when present: what the device benches and the reports
// read, and the record kdedge export keeps (whose contents the schema leaves open).
export const OPTIONAL_FIELDS = [
  [["task", "label_names"], "strings"], [["task", "metrics"], "strings"], [["architecture"], "string"],
  [["parameters"], "size"], [["opset"], "count"], [["precision"], "string"], [["quantization"], "object"],
  [["quantization", "scheme"], "string"], [["quantization", "preset"], "string"], [["transforms"], "object"],
  [["dev"], "object"], [["parity"], "object"], [["files", "model.onnx", "bytes"], "size"],
  [["student"], "object"], [["config"], "object"], [["versions"], "object"], [["data"], "object"],
  [["file_layout"], "object"], [["file_layout", "columns"], "columns"], [["file_layout", "header"], "boolean"],
  [["file_layout", "label_values"], "label_values"], [["export_time_s"], "number"],
];

const shown = (value) => String(JSON.stringify(value) ?? "null").slice(0, 60);

// The manifest's text parsed and checked field by field; a BundleError names the file and the first wrong field.
// `where` names the manifest in messages (a path or a URL).
export function parseManifest(text, where) {
  let manifest;
  try {
    manifest = JSON.parse(text);
  } catch (e) {
    throw new BundleError(`${where} is not valid JSON (${e.message.replace(/\s+/g, " ")})`); // V8 quotes the text, newlines too
  }
  return checkManifest(manifest, where);
}

// A parsed manifest checked against the bundle format; returns it, or throws a BundleError naming the first wrong field.
export function checkManifest(manifest, where) {
  if (!isObject(manifest)) throw new BundleError(`${where} is not valid JSON (expected an object)`);
  if (manifest.format !== BUNDLE_FORMAT) {
    throw new BundleError(`${where} has format ${JSON.stringify(manifest.format) ?? "null"}; ` +
      `this runtime reads "${BUNDLE_FORMAT}"`);
  }
  for (const [fields, required] of [[MANIFEST_FIELDS, true], [OPTIONAL_FIELDS, false]]) {
    for (const [keys, kind] of fields) {
      let value = manifest;
      for (const key of keys) value = isObject(value) && Object.hasOwn(value, key) ? value[key] : undefined;
      if (value === undefined && !required) continue;
      const name = keys.join(".");
      const [description, accepts] = KINDS[kind];
      if (value === undefined) throw new BundleError(`${where}: field '${name}' is missing`);
      if (!accepts(value)) throw new BundleError(`${where}: field '${name}' must be ${description}, not ${shown(value)}`);
      if (BOUNDED.has(kind) && value > MAX_INDEX) {
        throw new BundleError(`${where}: field '${name}' must be at most ${MAX_INDEX}, not ${shown(value)}`);
      }
    }
  }
  const { task, tokenizer: rules } = manifest;
  if (!task.is_regression && manifest.label_names.length === 0) {
    throw new BundleError(`${where}: field 'label_names' is empty for a classification task`);
  }
  if (task.is_pair && rules.pair_encoding === null) {
    throw new BundleError(`${where}: field 'tokenizer.pair_encoding' must be "joint" or "separate" for a ` +
      "sentence-pair task, not null");
  }
  if (!task.is_pair && rules.pair_encoding !== null) {
    throw new BundleError(`${where}: field 'tokenizer.pair_encoding' must be null for a single-sentence task, not ` +
      `${JSON.stringify(rules.pair_encoding)}`);
  }
  const names = manifest.inputs.map((i) => i.name);
  const unknown = names.filter((n) => !INPUT_NAMES.includes(n));
  if (unknown.length) {
    throw new BundleError(`${where}: field 'inputs' names ${shown(unknown[0])}, which no runtime feeds ` +
      `(it feeds ${INPUT_NAMES.join(", ")})`);
  }
  if (!names.includes("input_ids")) throw new BundleError(`${where}: field 'inputs' must list "input_ids"`);
  const separate = rules.pair_encoding === "separate";
  if (separate !== names.includes("input_ids_b") || (!separate && names.includes("attention_mask_b"))) {
    throw new BundleError(`${where}: field 'inputs' must list input_ids_b exactly when 'tokenizer.pair_encoding' is ` +
      `"separate" (and attention_mask_b only then), not ${JSON.stringify(names).slice(0, 80)}`);
  }
  if (!FILE_NAME.test(rules.file)) {
    const name = rules.file.replace(/[\u0000-\u001f]/g, (c) => JSON.stringify(c).slice(1, -1)); // a message is one line
    throw new BundleError(`${where}: field 'tokenizer.file' points outside the bundle (${name}); a bundle's ` +
      "files are named by relative paths inside its folder");
  }
  if (Object.hasOwn(rules, "ngram")) { // the n-gram student's tokenizer: rules this runtime implements, or a refusal
    try {
      checkNgramTokenizer(rules, where);
    } catch (e) {
      throw new BundleError(e.message);
    }
  }
  return manifest;
}

// How many ids a tokenizer.json can emit: its vocabulary and its added tokens.
export function vocabularySize(tokenizerJson) {
  const vocab = tokenizerJson?.model?.vocab ?? {};
  const ids = Array.isArray(vocab) ? [vocab.length - 1] : Object.values(vocab);
  for (const t of tokenizerJson?.added_tokens ?? []) ids.push(t.id);
  return ids.reduce((max, id) => (isInt(id) && id > max ? id : max), -1) + 1; // no spread: vocabularies pass 125,000 ids
}

export function firstLine(error) {
  const text = String(error?.message ?? error).trim();
  return text ? text.split(/[\r\n]/)[0].slice(0, 200) : String(error?.name ?? "Error");
}
