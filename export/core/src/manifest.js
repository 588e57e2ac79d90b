// A bundle is untrusted input: its manifest is checked field by field before anything else is read. The field
// list and the messages mirror kdedge_runtime (export/python/kdedge_runtime/classifier.py), so every runtime
// (Python, Node, the browser) refuses the same bundles in the same words. No platform API is used here.
export const BUNDLE_FORMAT = "kdedge-bundle/1";

export class BundleError extends Error {
  constructor(message) {
    super(message);
    this.name = "BundleError";
  }
}

const isInt = (v) => Number.isInteger(v) && typeof v === "number";
const KINDS = {
  string: ["a string", (v) => typeof v === "string"],
  boolean: ["true or false", (v) => typeof v === "boolean"],
  strings: ["a list of strings", (v) => Array.isArray(v) && v.every((x) => typeof x === "string")],
  count: ["a positive integer", (v) => isInt(v) && v > 0],
  id: ["a non-negative integer", (v) => isInt(v) && v >= 0],
  pairing: ['null, "joint" or "separate"', (v) => v === null || v === "joint" || v === "separate"],
  names: ['a list of {"name": "..."} objects',
    (v) => Array.isArray(v) && v.every((x) => x !== null && typeof x === "object" && typeof x.name === "string")],
  sha256: ["a sha256 hex digest", (v) => typeof v === "string" && /^[0-9a-f]{64}$/.test(v)],
};
export const MANIFEST_FIELDS = [
  [["format"], "string"], [["task", "name"], "string"], [["task", "is_pair"], "boolean"],
  [["task", "is_regression"], "boolean"], [["label_names"], "strings"], [["max_length"], "count"],
  [["tokenizer", "file"], "string"], [["tokenizer", "add_special_tokens"], "boolean"],
  [["tokenizer", "pair_encoding"], "pairing"], [["tokenizer", "pad_token_id"], "id"], [["inputs"], "names"],
  [["outputs"], "names"], [["files", "model.onnx", "sha256"], "sha256"],
];

export const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

// The manifest's text parsed and checked field by field; a BundleError names the file and the first wrong field.
// `where` names the manifest in messages (a path or a URL).
export function parseManifest(text, where) {
  let manifest;
  try {
    manifest = JSON.parse(text);
  } catch (e) {
    throw new BundleError(`${where} is not valid JSON (${e.message})`);
  }
  if (!isObject(manifest)) throw new BundleError(`${where} is not valid JSON (expected an object)`);
  if (manifest.format !== BUNDLE_FORMAT) {
    throw new BundleError(`${where} has format ${JSON.stringify(manifest.format) ?? "null"}; ` +
      `this runtime reads "${BUNDLE_FORMAT}"`);
  }
  for (const [keys, kind] of MANIFEST_FIELDS) {
    let value = manifest;
    for (const key of keys) value = isObject(value) && key in value ? value[key] : undefined;
    const name = keys.join(".");
    const [description, accepts] = KINDS[kind];
    if (value === undefined) throw new BundleError(`${where}: field '${name}' is missing`);
    if (!accepts(value)) {
      throw new BundleError(`${where}: field '${name}' must be ${description}, not ` +
        `${JSON.stringify(value).slice(0, 60)}`);
    }
  }
  if (!manifest.task.is_regression && manifest.label_names.length === 0) {
    throw new BundleError(`${where}: field 'label_names' is empty for a classification task`);
  }
  return manifest;
}

// How many ids a tokenizer.json can emit: its vocabulary and its added tokens.
export function vocabularySize(tokenizerJson) {
  const vocab = tokenizerJson?.model?.vocab ?? {};
  const ids = Array.isArray(vocab) ? [vocab.length - 1] : Object.values(vocab);
  for (const t of tokenizerJson?.added_tokens ?? []) ids.push(t.id);
  return Math.max(-1, ...ids.filter((id) => isInt(id))) + 1;
}

export function firstLine(error) {
  const text = String(error?.message ?? error).trim();
  return text ? text.split("\n")[0].slice(0, 200) : String(error?.name ?? "Error");
}
