// A bundle is untrusted input: its manifest is checked field by field, and every file it names must lie inside the
// bundle folder. The field list and the messages mirror kdedge_runtime (export/python/kdedge_runtime/classifier.py),
// so both runtimes refuse the same bundles in the same words.
import { existsSync, readFileSync, realpathSync, statSync } from "node:fs";
import path from "node:path";

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

const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

// The bundle's manifest, checked field by field; a BundleError names the first field that is wrong.
export function readManifest(dir) {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new BundleError(`${dir} is not a folder: give the bundle folder written by \`kdedge export\``);
  }
  const missing = ["manifest.json", "model.onnx"].filter((f) => !existsSync(path.join(dir, f)));
  if (missing.length) throw new BundleError(`${dir} is not a complete kdedge bundle: ${missing.join(", ")} missing`);
  const manifestFile = path.join(dir, "manifest.json");
  let manifest;
  try {
    manifest = JSON.parse(readFileSync(manifestFile, "utf8"));
  } catch (e) {
    throw new BundleError(`${manifestFile} is not valid JSON (${e.message})`);
  }
  if (!isObject(manifest)) throw new BundleError(`${manifestFile} is not valid JSON (expected an object)`);
  if (manifest.format !== BUNDLE_FORMAT) {
    throw new BundleError(`${manifestFile} has format ${JSON.stringify(manifest.format) ?? "null"}; ` +
      `this runtime reads "${BUNDLE_FORMAT}"`);
  }
  for (const [keys, kind] of MANIFEST_FIELDS) {
    let value = manifest;
    for (const key of keys) value = isObject(value) && key in value ? value[key] : undefined;
    const name = keys.join(".");
    const [description, accepts] = KINDS[kind];
    if (value === undefined) throw new BundleError(`${manifestFile}: field '${name}' is missing`);
    if (!accepts(value)) {
      throw new BundleError(`${manifestFile}: field '${name}' must be ${description}, not ` +
        `${JSON.stringify(value).slice(0, 60)}`);
    }
  }
  if (!manifest.task.is_regression && manifest.label_names.length === 0) {
    throw new BundleError(`${manifestFile}: field 'label_names' is empty for a classification task`);
  }
  bundleFile(dir, manifest.tokenizer.file, "tokenizer.file");
  return manifest;
}

// A file of the bundle, refused unless it lies inside the bundle folder (after links are followed); `field` names
// the manifest field the name came from.
export function bundleFile(dir, name, field = null) {
  const root = realpathSync(dir);
  const joined = path.resolve(dir, name); // an absolute name stays absolute, as in Python
  const target = existsSync(joined) ? realpathSync(joined) : joined;
  if (!target.startsWith(root + path.sep)) {
    const where = field ? `${path.join(dir, "manifest.json")}: field '${field}' points` : `${path.join(dir, name)} links`;
    throw new BundleError(`${where} outside the bundle (${name}); a bundle's files must lie inside its folder`);
  }
  if (!existsSync(target) || !statSync(target).isFile()) {
    throw new BundleError(`${dir} is not a complete kdedge bundle: ${name} missing`);
  }
  return target;
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
