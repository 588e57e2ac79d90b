#!/usr/bin/env node
// Build dist/: one ES module per entry (kdedge-web.js: WebAssembly; kdedge-web-webgpu.js: WebGPU with WebAssembly
// behind it), each with kdedge-runtime-core, the tokenizer and onnxruntime-web inside, and next to them the
// WebAssembly binaries onnxruntime-web fetches at run time (it finds them beside the module, by import.meta.url).
// Any static web server can serve dist/ and demo/ as they are.
import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { build } from "esbuild";

const ROOT = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const DIST = path.join(ROOT, "dist");
const ENTRIES = { "kdedge-web": "src/index.js", "kdedge-web-webgpu": "src/webgpu.js" };
const WASM = ["ort-wasm-simd-threaded.wasm", "ort-wasm-simd-threaded.asyncify.wasm"]; // the wasm and webgpu builds'

rmSync(DIST, { recursive: true, force: true });
mkdirSync(DIST, { recursive: true });
await build({
  entryPoints: Object.fromEntries(Object.entries(ENTRIES).map(([name, file]) => [name, path.join(ROOT, file)])),
  outdir: DIST, bundle: true, format: "esm", platform: "browser", target: "es2022", minify: true, sourcemap: true,
  logLevel: "warning",
});
const ortDist = path.dirname(createRequire(import.meta.url).resolve("onnxruntime-web/wasm"));
for (const file of WASM) copyFileSync(path.join(ortDist, file), path.join(DIST, file));
console.log(`built ${path.relative(process.cwd(), DIST) || "."}/: ${Object.keys(ENTRIES).map((n) => `${n}.js`).join(", ")} and ${WASM.join(", ")}`);
