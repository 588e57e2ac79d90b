// kdedge-runtime-core's session options (src/session.js): without a GPU provider, ONNX Runtime is told to skip its
// SkipLayerNormalization fusion; the user's own options and configuration entries are kept. (tests/test_session.py
// checks that onnxruntime-node then runs the unfused graph.)
import assert from "node:assert/strict";
import { test } from "node:test";

import { sessionOptionsFor } from "kdedge-runtime-core";

const disabled = (options) => options.extra?.optimization?.disable_specified_optimizers;

test("CPU and WebAssembly sessions skip the fusion, keeping the caller's options", () => {
  assert.equal(disabled(sessionOptionsFor()), "SkipLayerNormFusion");
  const options = { executionProviders: ["wasm"], intraOpNumThreads: 1, extra: { session: { intra_op_thread_affinities: "1" } } };
  const result = sessionOptionsFor(options);
  assert.equal(disabled(result), "SkipLayerNormFusion");
  assert.equal(result.intraOpNumThreads, 1);
  assert.deepEqual(result.extra.session, { intra_op_thread_affinities: "1" });
  assert.equal(options.extra.optimization, undefined); // the caller's object is not changed
});

test("a session with a GPU provider keeps ONNX Runtime's fusion", () => {
  for (const providers of [["webgpu", "wasm"], [{ name: "cuda", deviceId: 0 }, "cpu"]]) {
    assert.equal(disabled(sessionOptionsFor({ executionProviders: providers })), undefined, JSON.stringify(providers));
  }
});
