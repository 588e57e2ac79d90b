// kdedge-web: run a kdedge bundle in the browser with onnxruntime-web (WebAssembly with SIMD; threads on cross-origin
// isolated pages) and the bundle's tokenizer.json. The API and errors are the Node runtime's:
//   const clf = await Classifier.load("bundles/sst2/"); await clf.predict("a gorgeous film");
// `kdedge-web/webgpu` is the same on onnxruntime-web's WebGPU build, falling back to WebAssembly.
import * as ort from "onnxruntime-web/wasm";
import { webClassifier } from "./load.js";

export { BUNDLE_FORMAT, BundleError } from "kdedge-runtime-core";
export { ort };
export const Classifier = webClassifier(ort, ["wasm"]);
