// The classifier every JavaScript runtime shares: check a bundle's files once they are read, tokenize as the student
// was trained, pad, run, decode. A runtime (Node, the browser) reads the files its own way and passes an ONNX Runtime
// module (onnxruntime-node or onnxruntime-web) and a sha256 function; everything else is here, once.
import { BundleError, firstLine, vocabularySize } from "./manifest.js";
import { sessionOptionsFor } from "./session.js";
import { BundleTokenizer } from "./tokenizer.js";
import { NgramTokenizer } from "./ngram.js";

const ID_INPUTS = new Set(["input_ids", "input_ids_b"]); // padded with the pad token; masks and type ids with 0
// The inputs a feed of one text is built for directly (the second text's inputs end in _b); any other goes through pad.
const DIRECT_INPUTS = new Set(["input_ids", "attention_mask", "token_type_ids", "input_ids_b", "attention_mask_b"]);
const FETCHES = ["logits"];

// An int64 element written as two 32-bit halves (low first on a little-endian machine): a token id is a non-negative
// integer below 2**31 (the vocabulary's), so its high half is 0 and no BigInt is made per element.
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

// data (a BigInt64Array of zeros) <- values, then `fill` to its end; halves: an Int32Array over data's buffer (or
// null), and data's first element in it at 2 * at.
function fillIds(data, values, fill, halves = null, at = 0) {
  const n = values.length;
  if (halves === null && LITTLE_ENDIAN) {
    halves = new Int32Array(data.buffer, data.byteOffset, 2 * data.length);
    at = 0;
  }
  if (halves !== null && (fill | 0) === fill && fill >= 0) {
    let i = 0;
    for (; i < n; i++) {
      const v = values[i];
      if ((v | 0) !== v || v < 0) break; // not a small id: the general path below
      halves[2 * (at + i)] = v;
    }
    if (i === n) {
      if (fill !== 0) for (let j = n; j < data.length; j++) halves[2 * (at + j)] = fill;
      return;
    }
  }
  for (let j = 0; j < n; j++) data[j] = BigInt(values[j]);
  if (fill !== 0) data.fill(BigInt(fill), n);
}

function fillOnes(data, n, halves, at) {
  if (halves === null) {
    data.fill(1n, 0, n);
  } else {
    for (let j = 0; j < n; j++) halves[2 * (at + j)] = 1;
  }
}

// The first row of a run's logits, as numbers.
function firstRow(result) {
  const { data, dims } = result.logits;
  return Array.from(data.subarray(0, dims[dims.length - 1]));
}

function ones(n) {
  return new Array(n).fill(1);
}

function checkBatchSize(batchSize) {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`batchSize must be at least 1, not ${batchSize}`);
}

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
    const classifier = new this(manifest, session, tokenizer, platform.ort.Tensor, modelName);
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
    } catch (e) {
      // ONNX Runtime's words when a Gather's index is past its table; anything else: a model that cannot run at all
      if (!String(e?.message ?? e).includes("out of data bounds")) {
        throw new BundleError(`${modelName} failed on a probe input at load (${firstLine(e)})`);
      }
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

  constructor(manifest, session, tokenizer, Tensor, modelName = "model.onnx") {
    this.manifest = manifest;
    this.modelName = modelName;
    this.session = session;
    this.tokenizer = tokenizer;
    this.Tensor = Tensor;
    this.inputNames = [...session.inputNames];
    this.pairEncoding = manifest.tokenizer.pair_encoding; // null, "joint" or "separate"
    this.padTokenId = manifest.tokenizer.pad_token_id;
    this.directFeed = this.inputNames.every((name) => DIRECT_INPUTS.has(name));
    // one text's feed is written into this buffer while no other call's feed is in it (oneRow): ONNX Runtime takes
    // about 0.7 µs more (Node, a small feed) to read a buffer it has not seen than this one
    this.feedBuffer = new ArrayBuffer(8 * 512);
    this.feedBufferBusy = false;
  }

  get labels() { return [...this.manifest.label_names]; }
  get isPair() { return Boolean(this.manifest.task.is_pair); }
  get isRegression() { return Boolean(this.manifest.task.is_regression); }
  get maxLength() { return this.manifest.max_length; }

  // One prediction ({label, score, logits}) for a string, an array of them for an array.
  async predict(texts, pairs = null, { batchSize = 32 } = {}) {
    if (typeof texts === "string") {
      // one text (an app's usual call): tokenized straight into its batch-1 feed, no batching, sorting or padding
      const [, pairList] = this.checkInputs(texts, pairs);
      checkBatchSize(batchSize);
      return this.decode(await this.oneRow(texts, pairList ? pairList[0] : null));
    }
    const logits = await this.logits(texts, pairs, { batchSize });
    return logits.map((row) => this.decode(row));
  }

  async logits(texts, pairs = null, { batchSize = 32 } = {}) {
    [texts, pairs] = this.checkInputs(texts, pairs);
    checkBatchSize(batchSize);
    if (texts.length === 1) return [await this.logitsOf(texts[0], pairs ? pairs[0] : null)];
    const features = texts.map((t, i) => this.encode(t, pairs ? pairs[i] : null));
    // Length-sorted batches keep padding small; results are put back in input order.
    const order = features.map((f, i) => i).sort((i, j) => features[j].length - features[i].length || i - j);
    const out = new Array(texts.length);
    for (let start = 0; start < order.length; start += batchSize) {
      const rows = order.slice(start, start + batchSize);
      const result = await this.runModel(this.pad(rows.map((i) => features[i])));
      const { data, dims } = result.logits;
      const width = dims[dims.length - 1];
      for (let k = 0; k < rows.length; k++) out[rows[k]] = Array.from(data.subarray(k * width, (k + 1) * width));
    }
    return out;
  }

  // The logits of one text (and pair): the same ids and the same batch-1 feed as encode() and pad() give, built
  // directly as int64 tensors.
  async logitsOf(text, pair) {
    return this.oneRow(text, pair);
  }

  // The logits of one text (and pair), its feed in the classifier's buffer unless another call's feed is there:
  // ONNX Runtime reads a feed after run() has returned its promise, so calls in flight together must not share it.
  async oneRow(text, pair) {
    if (this.feedBufferBusy) return firstRow(await this.runModel(this.feedOf(text, pair)));
    this.feedBufferBusy = true;
    try {
      return firstRow(await this.runModel(this.feedOf(text, pair, this.feedBuffer)));
    } finally {
      this.feedBufferBusy = false;
    }
  }

  // The model's outputs for one feed. The probe at load passed, so a failure here is a broken bundle meeting this
  // input: one BundleError, in the words of Python's Classifier.run_batch.
  async runModel(feed) {
    try {
      return await this.session.run(feed, FETCHES);
    } catch (e) {
      throw new BundleError(`${this.modelName} failed on this input (${firstLine(e)})`);
    }
  }

  // The batch-1 feed of one text (and pair): its inputs views of one buffer (`buffer` where it is large enough, a new
  // one otherwise), written without a BigInt per element where the ids allow (fillIds).
  feedOf(text, pair, buffer = null) {
    if (!this.directFeed) return this.pad([this.encode(text, pair)]);
    let a;
    let b = null;
    if (pair !== null && this.pairEncoding === "joint") {
      a = this.tokenizer.encode(text, pair);
    } else {
      a = this.tokenizer.encode(text);
      if (pair !== null) b = this.tokenizer.encode(pair);
    }
    const widthA = Math.max(1, a.ids.length);
    const widthB = b === null ? 0 : Math.max(1, b.ids.length);
    let total = 0;
    for (const name of this.inputNames) {
      if (name.endsWith("_b") && b === null) return this.pad([this.encode(text, pair)]); // pad's error, for a missing pair
      total += name.endsWith("_b") ? widthB : widthA;
    }
    if (buffer === null || buffer.byteLength < 8 * total) {
      buffer = new ArrayBuffer(8 * total);
    } else {
      new Int32Array(buffer, 0, 2 * total).fill(0); // fillIds and fillOnes write into zeros
    }
    const halves = LITTLE_ENDIAN ? new Int32Array(buffer) : null;
    const feed = {};
    let offset = 0;
    for (const name of this.inputNames) {
      const source = name.endsWith("_b") ? b : a;
      const width = name.endsWith("_b") ? widthB : widthA;
      const data = new BigInt64Array(buffer, 8 * offset, width);
      switch (name) {
        case "input_ids": case "input_ids_b": fillIds(data, source.ids, this.padTokenId, halves, offset); break;
        case "attention_mask": case "attention_mask_b": fillOnes(data, source.ids.length, halves, offset); break;
        default: fillIds(data, source.typeIds, 0, halves, offset); // token_type_ids
      }
      feed[name] = new this.Tensor("int64", data, [1, width]);
      offset += width;
    }
    return feed;
  }

  // Token ids per model input for one example (unpadded), and its length.
  encode(text, pair) {
    const features = {};
    let length;
    if (pair !== null && this.pairEncoding === "joint") {
      const e = this.tokenizer.encode(text, pair);
      Object.assign(features, { input_ids: e.ids, attention_mask: ones(e.ids.length), token_type_ids: e.typeIds });
      length = e.ids.length;
    } else {
      const e = this.tokenizer.encode(text);
      Object.assign(features, { input_ids: e.ids, attention_mask: ones(e.ids.length), token_type_ids: e.typeIds });
      length = e.ids.length;
      if (pair !== null) {
        const second = this.tokenizer.encode(pair);
        features.input_ids_b = second.ids;
        features.attention_mask_b = ones(second.ids.length);
        length += second.ids.length;
      }
    }
    return { inputs: features, length };
  }

  // int64 tensors right-padded to the longest row (at least one position).
  pad(rows) {
    const feed = {};
    for (const name of this.inputNames) {
      let width = 1;
      for (const r of rows) width = Math.max(width, r.inputs[name].length);
      const data = new BigInt64Array(rows.length * width);
      const fill = ID_INPUTS.has(name) ? this.padTokenId : 0;
      for (let i = 0; i < rows.length; i++) fillIds(data.subarray(i * width, (i + 1) * width), rows[i].inputs[name], fill);
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

  // The label with the largest logit and its softmax probability; a NaN among the exponentials (a NaN logit, an
  // infinite largest one) gives no label and a NaN score, as Math.max and indexOf rule.
  decode(logits) {
    if (this.isRegression) return { label: null, score: logits[0], logits };
    const n = logits.length;
    let max = -Infinity;
    for (let i = 0; i < n; i++) max = Math.max(max, logits[i]);
    const exp = new Array(n);
    let sum = 0;
    let best = -1;
    let top = -Infinity;
    let nan = false;
    for (let i = 0; i < n; i++) {
      const e = Math.exp(logits[i] - max);
      exp[i] = e;
      sum += e;
      if (e > top) { top = e; best = i; } else if (e !== e) nan = true;
    }
    if (nan) best = -1; // as exp.indexOf(Math.max(...exp)) gives
    return { label: this.manifest.label_names[best], score: exp[best] / sum, logits };
  }
}
