// Loading a bundle over HTTP: the browser half of kdedge-web. Every file is fetched relative to the bundle's URL and
// refused unless it resolves inside that folder (same origin, below its path), the model is checked against the
// manifest's sha256 with Web Crypto, and the classifier itself is kdedge-runtime-core's, shared with Node.
import { BundleError, Classifier as CoreClassifier, firstLine, parseManifest } from "kdedge-runtime-core";

const here = () => globalThis.location?.href ?? globalThis.document?.baseURI ?? undefined;

// The bundle folder's URL, ending in "/" so that file names resolve inside it.
export function bundleBase(url) {
  let base;
  try {
    base = new URL(String(url), here());
  } catch {
    throw new BundleError(`${url} is not a URL: give the URL of the bundle folder written by \`kdedge export\``);
  }
  if (!base.pathname.endsWith("/")) base.pathname += "/";
  base.search = "";
  base.hash = "";
  return base;
}

function decoded(path) {
  try {
    return decodeURIComponent(path);
  } catch {
    return path.replaceAll("%2e", ".").replaceAll("%2E", "."); // malformed escapes: still catch encoded dots
  }
}

// A file of the bundle, refused unless its name resolves strictly inside the bundle folder; `shown` is the bundle as
// the caller named it (messages name files as the Node runtime does: BUNDLE/FILE).
export function bundleUrl(base, name, field, shown = base.href.slice(0, -1)) {
  let target;
  try {
    target = new URL(name, base);
  } catch {
    target = null;
  }
  const inside = target && target.origin === base.origin && target.pathname.startsWith(base.pathname)
    && target.pathname.length > base.pathname.length && !target.search && !target.hash
    && !decoded(target.pathname).split(/[/\\]/).includes(".."); // "..%2f" is a parent once a server decodes it
  if (!inside) {
    throw new BundleError(`${shown}/manifest.json: field '${field}' points outside the bundle (${name}); ` +
      "a bundle's files must lie inside its folder");
  }
  return target;
}

async function fetchFile(fetchFn, shown, url, name, { optional = false } = {}) {
  let response;
  try {
    response = await fetchFn(url, { credentials: "same-origin" });
  } catch (e) {
    throw new BundleError(`could not fetch ${url} (${firstLine(e)}): is the bundle served at ${shown}?`);
  }
  if (response.status === 404 || response.status === 410) {
    if (optional) return null;
    throw new BundleError(`${shown} is not a complete kdedge bundle: ${name} missing`);
  }
  if (!response.ok) throw new BundleError(`could not fetch ${url}: HTTP ${response.status} ${response.statusText}`);
  return response;
}

async function sha256(bytes) {
  if (!globalThis.crypto?.subtle) {
    throw new BundleError("checking model.onnx against the manifest's sha256 needs Web Crypto, which browsers give " +
      "only to secure pages: serve the page over https (or from localhost), or load with { verifyChecksum: false }");
  }
  const digest = new Uint8Array(await globalThis.crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

// The Classifier class of one onnxruntime-web build (wasm only, or WebGPU with wasm behind it).
export function webClassifier(ort, defaultProviders) {
  const platform = { ort, sha256 };
  return class Classifier extends CoreClassifier {
    // url: the bundle folder. numThreads and wasmPaths set onnxruntime-web's (page-wide) wasm settings: threads run
    // only on cross-origin isolated pages (COOP/COEP headers), and onnxruntime-web then picks min(4, cores / 2).
    static async load(url, { executionProviders = defaultProviders, numThreads, wasmPaths, verifyChecksum = true,
      fetch: fetchFn = globalThis.fetch.bind(globalThis) } = {}) {
      const base = bundleBase(url);
      const shown = String(url).replace(/\/+$/, "");
      if (numThreads !== undefined) ort.env.wasm.numThreads = numThreads;
      if (wasmPaths !== undefined) ort.env.wasm.wasmPaths = wasmPaths;
      const get = (file, name, options) => fetchFile(fetchFn, shown, file, name, options);
      const manifestName = `${shown}/manifest.json`;
      const manifest = parseManifest(await (await get(new URL("manifest.json", base), "manifest.json")).text(), manifestName);
      const tokenizerFile = manifest.tokenizer.file;
      const tokenizerUrl = bundleUrl(base, tokenizerFile, "tokenizer.file", shown);
      const [model, tokenizer, config] = await Promise.all([get(new URL("model.onnx", base), "model.onnx"),
        get(tokenizerUrl, tokenizerFile), get(new URL("tokenizer_config.json", base), "tokenizer_config.json", { optional: true })]);
      return this.fromFiles({
        manifest, manifestName, modelName: `${shown}/model.onnx`, modelBytes: new Uint8Array(await model.arrayBuffer()),
        tokenizerName: `${shown}/${tokenizerFile}`, tokenizerText: await tokenizer.text(),
        tokenizerConfigText: config ? await config.text() : null,
      }, platform, { sessionOptions: { executionProviders }, verifyChecksum });
    }
  };
}
