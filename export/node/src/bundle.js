// A bundle folder on disk: the manifest checked by kdedge-runtime-core, and every file it names refused unless it lies
// inside the folder. The messages mirror kdedge_runtime (export/python/kdedge_runtime/classifier.py).
import { existsSync, readFileSync, realpathSync, statSync } from "node:fs";
import path from "node:path";

import { BUNDLE_FORMAT, BundleError, parseManifest } from "kdedge-runtime-core";

export { BUNDLE_FORMAT, BundleError };

// The bundle's manifest, checked field by field; a BundleError names the first field that is wrong.
export function readManifest(dir) {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new BundleError(`${dir} is not a folder: give the bundle folder written by \`kdedge export\``);
  }
  const missing = ["manifest.json", "model.onnx"].filter((f) => !existsSync(path.join(dir, f)));
  if (missing.length) throw new BundleError(`${dir} is not a complete kdedge bundle: ${missing.join(", ")} missing`);
  const manifestFile = path.join(dir, "manifest.json");
  const manifest = parseManifest(readFileSync(bundleFile(dir, "manifest.json"), "utf8"), manifestFile);
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
