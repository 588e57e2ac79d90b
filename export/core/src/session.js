// The ONNX Runtime session options every JavaScript runtime loads a bundle with, the same choice as the Python
// runtime's (kdedge_runtime/session.py): ONNX Runtime fuses each residual Add and the LayerNormalization after it
// into SkipLayerNormalization, whose CPU kernel (WebAssembly's too, the same C++) is slower than the two nodes it
// replaces. A session without a GPU provider is told to skip that fusion, through the session configuration entries
// that onnxruntime-node and onnxruntime-web take as `extra`.
export const CPU_DISABLED_OPTIMIZERS = ["SkipLayerNormFusion"];
// Providers with their own fused SkipLayerNormalization kernel: a session that lists one keeps the fusion.
const FUSED_KERNEL_PROVIDERS = new Set(["cuda", "tensorrt", "rocm", "migraphx", "dml", "webgpu"]);

export function sessionOptionsFor(options = {}) {
  const providers = (options.executionProviders ?? ["cpu"]).map((p) => (typeof p === "string" ? p : p?.name));
  if (providers.some((name) => FUSED_KERNEL_PROVIDERS.has(name))) return options;
  const optimization = { ...options.extra?.optimization, disable_specified_optimizers: CPU_DISABLED_OPTIMIZERS.join(";") };
  return { ...options, extra: { ...options.extra, optimization } };
}
