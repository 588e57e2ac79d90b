// kdedge-runtime for Node.js: load a bundle written by `kdedge export` from a folder, tokenize as the student was
// trained, run it with onnxruntime-node, and return labels, scores and logits. The same API shape as the Python
// kdedge_runtime: predict(texts, pairs) gives one prediction for a string, an array for an array. The classifier
// itself is kdedge-runtime-core's, shared with the browser runtime; only reading the folder is done here.
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";

import * as ort from "onnxruntime-node";
import { Classifier as CoreClassifier } from "kdedge-runtime-core";

import { BUNDLE_FORMAT, BundleError, bundleFile, readManifest } from "./bundle.js";

export { BUNDLE_FORMAT, BundleError };

const platform = { ort, sha256: async (bytes) => createHash("sha256").update(bytes).digest("hex") };

export class Classifier extends CoreClassifier {
  static async load(bundleDir, { executionProviders = ["cpu"], intraOpNumThreads, verifyChecksum = true } = {}) {
    const manifest = readManifest(bundleDir);
    const modelFile = bundleFile(bundleDir, "model.onnx");
    const tokenizerFile = bundleFile(bundleDir, manifest.tokenizer.file, "tokenizer.file");
    const configFile = path.join(bundleDir, "tokenizer_config.json");
    const sessionOptions = { executionProviders };
    if (intraOpNumThreads) sessionOptions.intraOpNumThreads = intraOpNumThreads;
    return this.fromFiles({ // files are read where they resolve, and named as the caller named the bundle
      manifest, manifestName: path.join(bundleDir, "manifest.json"), modelName: path.join(bundleDir, "model.onnx"),
      modelBytes: readFileSync(modelFile), tokenizerName: path.join(bundleDir, manifest.tokenizer.file),
      tokenizerText: readFileSync(tokenizerFile, "utf8"),
      tokenizerConfigText: existsSync(configFile) ? readFileSync(bundleFile(bundleDir, "tokenizer_config.json"), "utf8") : null,
    }, platform, { sessionOptions, verifyChecksum });
  }
}
