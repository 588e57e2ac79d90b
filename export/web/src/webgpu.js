// kdedge-web on onnxruntime-web's WebGPU build: WebGPU where the browser has it, WebAssembly otherwise.
import * as ort from "onnxruntime-web/webgpu";
import { webClassifier } from "./load.js";

export { BUNDLE_FORMAT, BundleError } from "kdedge-runtime-core";
export { ort };
export const webgpuAvailable = () => Boolean(globalThis.navigator?.gpu);
export const Classifier = webClassifier(ort, webgpuAvailable() ? ["webgpu", "wasm"] : ["wasm"]);
