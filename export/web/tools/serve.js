#!/usr/bin/env node
// A static server for the demo and the tests: export/web (dist/, demo/, test/) at /, bundle folders at
// /bundles/NAME/, on 127.0.0.1. It sends the cross-origin isolation headers (COOP/COEP) that let onnxruntime-web run
// threads; a production server serving the demo needs the same two headers for threads, nothing else.
//   node tools/serve.js [--port 8080] [--bundle NAME=DIR ...]   then open http://127.0.0.1:8080/demo/
import { createReadStream, existsSync, realpathSync, statSync } from "node:fs";
import { createServer } from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

export const ROOT = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const TYPES = { ".html": "text/html; charset=utf-8", ".js": "text/javascript", ".mjs": "text/javascript",
  ".json": "application/json", ".wasm": "application/wasm", ".map": "application/json", ".css": "text/css",
  ".png": "image/png", ".txt": "text/plain; charset=utf-8" };

// The file a request path names, or null: only inside the folder its prefix mounts (links followed).
function resolve(mounts, urlPath) {
  let decoded;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  for (const [prefix, dir] of mounts) {
    if (!decoded.startsWith(prefix)) continue;
    const root = realpathSync(dir);
    let file = path.resolve(root, `.${path.sep}${decoded.slice(prefix.length)}`);
    if (existsSync(file) && statSync(file).isDirectory()) file = path.join(file, "index.html");
    if (!existsSync(file)) return null;
    file = realpathSync(file);
    return file.startsWith(root + path.sep) && statSync(file).isFile() ? file : null;
  }
  return null;
}

export function serve({ port = 0, bundles = {}, isolate = true } = {}) {
  const mounts = [...Object.entries(bundles).map(([name, dir]) => [`/bundles/${name}/`, dir]), ["/", ROOT]];
  const server = createServer((req, res) => {
    const file = req.method === "GET" || req.method === "HEAD" ? resolve(mounts, new URL(req.url, "http://x").pathname) : null;
    const headers = isolate ? { "Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp" } : {};
    if (!file) {
      res.writeHead(req.method === "GET" || req.method === "HEAD" ? 404 : 405, { ...headers, "Content-Type": "text/plain" });
      res.end("not found\n");
      return;
    }
    res.writeHead(200, { ...headers, "Content-Type": TYPES[path.extname(file)] ?? "application/octet-stream",
      "Content-Length": statSync(file).size, "Cache-Control": "no-store" });
    if (req.method === "HEAD") res.end();
    else createReadStream(file).pipe(res);
  });
  return new Promise((ready) => {
    server.listen(port, "127.0.0.1", () => ready({ url: `http://127.0.0.1:${server.address().port}`,
      close: () => new Promise((done) => { server.closeAllConnections(); server.close(done); }) }));
  });
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { port: { type: "string", default: "8080" },
    bundle: { type: "string", multiple: true, default: [] } } });
  const bundles = {};
  for (const spec of values.bundle) {
    const [name, dir] = spec.includes("=") ? spec.split(/=(.*)/s) : [path.basename(path.resolve(spec)), spec];
    if (!/^[\w.-]+$/.test(name) || !existsSync(path.join(dir, "manifest.json"))) {
      console.error(`error: --bundle ${spec}: give NAME=DIR, DIR a bundle folder written by \`kdedge export\``);
      process.exit(2);
    }
    bundles[name] = dir;
  }
  if (!existsSync(path.join(ROOT, "dist", "kdedge-web.js"))) console.error("warning: dist/ is not built: run `npm run build` first");
  const { url } = await serve({ port: Number(values.port), bundles });
  const first = Object.keys(bundles)[0];
  console.log(`demo: ${url}/demo/${first ? `?bundle=/bundles/${first}/` : ""}`);
}
