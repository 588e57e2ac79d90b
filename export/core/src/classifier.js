// The classifier every JavaScript runtime shares: check a bundle's files once they are read, tokenize as the student
// was trained, pad, run, decode. A runtime (Node, the browser) reads the files its own way and passes an ONNX Runtime
// module (onnxruntime-node or onnxruntime-web) and a sha256 function; everything else is here, once.
import { BundleError, firstLine, vocabularySize } from "./manifest.js";
import { sessionOptionsFor } from "./session.js";
import { BundleTokenizer } from "./tokenizer.js";
import { NgramTokenizer } from "./ngram.js";

const ID_INPUTS = new Set(["input_ids", "input_ids_b"]); // padded with the pad token; masks and type ids with 0

// How a bundle's tokenizer file is read, each giving the tokenizer and the number of ids it can emit: by the n-gram
// rules when the manifest has them (src/ngram.js), else as a Hugging Face tokenizer.json.
const TOKENIZERS = {
  tokenizers: (json, config, manifest) => [new BundleTokenizer(json, config,
    { maxLength: manifest.max_length, addSpecialTokens: manifest.tokenizer.add_special_tokens }), vocabularySize(json)],
  ngram: (json, config, manifest) => {
    const tokenizer = new NgramTokenizer(json, manifest.tokenizer.ngram, { maxLength: manifest.max_length });
    return [tokenizer, tokenizer.vocabularySize];
  },
};

function asStrings(value, name) {
  if (typeof value === "string") return [value];
  if (!Array.isArray(value)) {
    throw new TypeError(`${name} must be a string or an array of strings, not ${value === null ? "null" : typeof value}`);
  }
  const bad = [...new Set(value.filter((v) => typeof v !== "string").map((v) => (v === null ? "null" : typeof v)))];
  if (bad.length) throw new TypeError(`${name} must contain only strings; found ${bad.sort().join(", ")}`);
  return value;
}

function parseJson(text, what) {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${what} is not valid JSON (${firstLine(e)})`);
  }
}

export class Classifier {
  // files: {manifest (checked), manifestName, modelName, modelBytes (Uint8Array), tokenizerName, tokenizerText,
  //   tokenizerConfigText (or null)}; platform: {ort, sha256: async bytes -> hex}; the names are what messages show.
  static async fromFiles(files, platform, { sessionOptions = {}, verifyChecksum = true } = {}) {
    const { manifest, modelName, modelBytes } = files;
    if (verifyChecksum) {
      const actual = await platform.sha256(modelBytes);
      const expected = manifest.files["model.onnx"].sha256;
      if (actual !== expected) {
        throw new BundleError(`${modelName} does not match its manifest (sha256 ${actual.slice(0, 12)}… vs ` +
          `${expected.slice(0, 12)}…): the model was changed or comes from another export`);
      }
    }
    let session;
    try {
      session = await platform.ort.InferenceSession.create(modelBytes, sessionOptionsFor(sessionOptions));
    } catch (e) {
      throw new BundleError(`${modelName} is not a model ONNX Runtime can load (${firstLine(e)})`);
    }
    for (const [kind, actual] of [["inputs", session.inputNames], ["outputs", session.outputNames]]) {
      const expected = manifest[kind].map((i) => i.name);
      if ([...actual].sort().join() !== [...expected].sort().join() || (kind === "outputs" && !actual.includes("logits"))) {
        throw new BundleError(`${modelName} has ${kind} ${JSON.stringify(actual)} but the manifest lists ` +
          `${JSON.stringify(expected)}: the model and manifest come from different exports`);
      }
    }
    let tokenizer;
    let size;
    try {
      const json = parseJson(files.tokenizerText, manifest.tokenizer.file);
      const config = files.tokenizerConfigText ? parseJson(files.tokenizerConfigText, "tokenizer_config.json") : {};
      [tokenizer, size] = TOKENIZERS[Object.hasOwn(manifest.tokenizer, "ngram") ? "ngram" : "tokenizers"](json, config, manifest);
    } catch (e) {
      throw new BundleError(`${files.tokenizerName} is not a valid tokenizer (${firstLine(e)})`);
    }
    const classifier = new this(manifest, session, tokenizer, platform.ort.Tensor);
    await classifier.checkVocabulary(size, files.tokenizerName, modelName, files.manifestName);
    return classifier;
  }

  // Every id the tokenizer can emit must index the model's embedding table: one probe run at load, so a mismatch
  // is a clear error now rather than a Gather failure on some later input.
  async checkVocabulary(size, tokenizerName, modelName, manifestName) {
    if (this.padTokenId >= size) {
      throw new BundleError(`${manifestName}: field 'tokenizer.pad_token_id' ` +
        `is ${this.padTokenId}, but ${tokenizerName.split(/[/\\]/).pop()} has only ${size} tokens`);
    }
    const inputs = {};
    for (const name of this.inputNames) inputs[name] = [ID_INPUTS.has(name) ? size - 1 : name.includes("mask") ? 1 : 0];
    let width;
    try {
      width = (await this.session.run(this.pad([{ inputs }]), ["logits"])).logits.dims.at(-1);
    } catch {
      throw new BundleError(`${tokenizerName} has ${size} tokens but the embedding table of ${modelName} is ` +
        "smaller: the tokenizer and the model come from different exports");
    }
    // one logit per label (one score for regression), or predictions would name labels that are not there
    const expected = this.isRegression ? 1 : this.manifest.label_names.length;
    if (width !== expected) {
      throw new BundleError(`${manifestName}: ${this.isRegression ? "field 'task.is_regression' is true" :
        `field 'label_names' names ${expected} labels`}, but ${modelName} gives ${width} logits`);
    }
    // and every token type id its template gives (a second probe, so that each failure names its cause)
    const typeId = this.tokenizer.maxTypeId(this.isPair && this.pairEncoding === "joint" ? "pair" : "single");
    if (typeId > 0 && this.inputNames.includes("token_type_ids")) {
      inputs.input_ids = [this.padTokenId];
      inputs.token_type_ids = [typeId];
      try {
        await this.session.run(this.pad([{ inputs }]), ["logits"]);
      } catch {
        throw new BundleError(`${tokenizerName} gives token type ids up to ${typeId} but ${modelName} takes fewer: ` +
          "the tokenizer and the model come from different exports");
      }
    }
  }

  constructor(manifest, session, tokenizer, Tensor) {
    this.manifest = manifest;
    this.session = session;
    this.tokenizer = tokenizer;
    this.Tensor = Tensor;
    this.inputNames = [...session.inputNames];
    this.pairEncoding = manifest.tokenizer.pair_encoding; // null, "joint" or "separate"
    this.padTokenId = manifest.tokenizer.pad_token_id;
  }

  get labels() { return [...this.manifest.label_names]; }
  get isPair() { return Boolean(this.manifest.task.is_pair); }
  get isRegression() { return Boolean(this.manifest.task.is_regression); }
  get maxLength() { return this.manifest.max_length; }

  // One prediction ({label, score, logits}) for a string, an array of them for an array.
  async predict(texts, pairs = null, { batchSize = 32 } = {}) {
    const single = typeof texts === "string";
    const logits = await this.logits(texts, pairs, { batchSize });
    const predictions = logits.map((row) => this.decode(row));
    return single ? predictions[0] : predictions;
  }

  async logits(texts, pairs = null, { batchSize = 32 } = {}) {
    [texts, pairs] = this.checkInputs(texts, pairs);
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`batchSize must be at least 1, not ${batchSize}`);
    const features = texts.map((t, i) => this.encode(t, pairs ? pairs[i] : null));
    // Length-sorted batches keep padding small; results are put back in input order.
    const order = features.map((f, i) => i).sort((i, j) => features[j].length - features[i].length || i - j);
    const out = new Array(texts.length);
    for (let start = 0; start < order.length; start += batchSize) {
      const rows = order.slice(start, start + batchSize);
      const result = await this.session.run(this.pad(rows.map((i) => features[i])), ["logits"]);
      const { data, dims } = result.logits;
      const width = dims[dims.length - 1];
      rows.forEach((row, k) => { out[row] = Array.from(data.slice(k * width, (k + 1) * width)); });
    }
    return out;
  }

  // Token ids per model input for one example (unpadded), and its length.
  encode(text, pair) {
    const features = {};
    let length;
    if (pair !== null && this.pairEncoding === "joint") {
      const e = this.tokenizer.encode(text, pair);
      Object.assign(features, { input_ids: e.ids, attention_mask: e.ids.map(() => 1), token_type_ids: e.typeIds });
      length = e.ids.length;
    } else {
      const e = this.tokenizer.encode(text);
      Object.assign(features, { input_ids: e.ids, attention_mask: e.ids.map(() => 1), token_type_ids: e.typeIds });
      length = e.ids.length;
      if (pair !== null) {
        const second = this.tokenizer.encode(pair);
        features.input_ids_b = second.ids;
        features.attention_mask_b = second.ids.map(() => 1);
        length += second.ids.length;
      }
    }
    return { inputs: features, length };
  }

  // int64 tensors right-padded to the longest row (at least one position).
  pad(rows) {
    const feed = {};
    for (const name of this.inputNames) {
      const width = Math.max(1, ...rows.map((r) => r.inputs[name].length));
      const fill = BigInt(ID_INPUTS.has(name) ? this.padTokenId : 0);
      const data = new BigInt64Array(rows.length * width).fill(fill);
      rows.forEach((r, i) => r.inputs[name].forEach((v, j) => { data[i * width + j] = BigInt(v); }));
      feed[name] = new this.Tensor("int64", data, [rows.length, width]);
    }
    return feed;
  }

  checkInputs(texts, pairs) {
    texts = asStrings(texts, "texts");
    const task = this.manifest.task.name;
    if (pairs === null || pairs === undefined) {
      if (this.isPair) throw new Error(`this bundle's task (${task}) classifies sentence pairs: give pairs as well`);
      return [texts, null];
    }
    if (!this.isPair) throw new Error(`this bundle's task (${task}) classifies single sentences: drop pairs`);
    pairs = asStrings(pairs, "pairs");
    if (pairs.length !== texts.length) throw new Error(`got ${texts.length} texts but ${pairs.length} pairs`);
    return [texts, pairs];
  }

  decode(logits) {
    if (this.isRegression) return { label: null, score: logits[0], logits };
    const max = Math.max(...logits);
    const exp = logits.map((v) => Math.exp(v - max));
    const sum = exp.reduce((a, b) => a + b, 0);
    const best = exp.indexOf(Math.max(...exp));
    return { label: this.manifest.label_names[best], score: exp[best] / sum, logits };
  }
}
