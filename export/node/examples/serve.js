#!/usr/bin/env node
// An HTTP endpoint for a kdedge bundle (node:http only), fit to copy into production.
//   node examples/serve.js BUNDLE_DIR [PORT]
//   curl -s localhost:8080/predict -d '{"texts": ["a gorgeous, witty film"]}'     (pair tasks: add "pairs")
// Untrusted clients are expected: a body is refused above MAX_BODY_BYTES (413) or without a valid Content-Length
// (411/400), a client that stops sending is dropped after READ_TIMEOUT_MS (408), a burst of connections waits in a
// deep listen backlog instead of being reset, and every failure is answered with a JSON error.
import { createServer } from "node:http";

import { Classifier } from "../src/index.js";

const MAX_BODY_BYTES = 1 << 20; // 1 MiB: thousands of sentences
const MAX_TEXTS = 1024;
const READ_TIMEOUT_MS = Number(process.env.SERVE_READ_TIMEOUT_S ?? 10) * 1000;
const UTF8 = new TextDecoder("utf-8", { fatal: true });

if (process.argv.length < 3) {
  console.error("usage: node serve.js BUNDLE_DIR [PORT]");
  process.exit(2);
}
const classifier = await Classifier.load(process.argv[2]);
const port = Number(process.argv[3] ?? 8080);

class RequestError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// `close`: the request's body may be unread, so the connection must not carry another request.
function reply(res, status, payload, close = false) {
  if (res.headersSent || res.destroyed) return;
  const body = JSON.stringify(payload);
  const headers = { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) };
  if (close) headers.Connection = "close";
  res.writeHead(status, headers);
  res.end(body);
}

async function readJson(req) {
  const raw = req.headers["content-length"];
  if (raw === undefined) throw new RequestError(411, "a Content-Length header is required");
  if (!/^\d+$/.test(raw.trim())) {
    throw new RequestError(400, `Content-Length must be a non-negative integer, not ${JSON.stringify(raw.slice(0, 40))}`);
  }
  const length = Number(raw);
  if (length > MAX_BODY_BYTES) throw new RequestError(413, `the body is limited to ${MAX_BODY_BYTES} bytes, got ${length}`);
  const chunks = [];
  let received = 0;
  for await (const chunk of req) {
    received += chunk.length;
    if (received > length) throw new RequestError(400, "the body is longer than its Content-Length");
    chunks.push(chunk);
  }
  let text;
  try {
    text = UTF8.decode(Buffer.concat(chunks)); // strict: bytes that are not UTF-8 are refused, not replaced with U+FFFD
  } catch {
    throw new RequestError(400, "the body is not valid JSON (it is not UTF-8)");
  }
  try {
    return JSON.parse(text || "{}");
  } catch (e) {
    throw new RequestError(400, `the body is not valid JSON (${e.message})`);
  }
}

// A client that never finishes its request gets 408 and is dropped (checked every second, not node's 30 s default).
const timeouts = { requestTimeout: READ_TIMEOUT_MS, headersTimeout: READ_TIMEOUT_MS,
  connectionsCheckingInterval: Math.min(1000, READ_TIMEOUT_MS) };
const server = createServer(timeouts, async (req, res) => {
  if (req.method !== "POST" || req.url !== "/predict") return reply(res, 404, { error: "POST to /predict" });
  try {
    const body = await readJson(req);
    if (body === null || typeof body !== "object" || body.texts === undefined) {
      throw new RequestError(400, 'the body needs "texts": a string or a list of strings');
    }
    if (Array.isArray(body.texts) && body.texts.length > MAX_TEXTS) {
      throw new RequestError(413, `at most ${MAX_TEXTS} texts per request, got ${body.texts.length}`);
    }
    const predictions = await classifier.predict(body.texts, body.pairs ?? null);
    reply(res, 200, { predictions: Array.isArray(predictions) ? predictions : [predictions] });
  } catch (e) {
    if (e instanceof RequestError) return reply(res, e.status, { error: e.message }, true);
    if (e instanceof TypeError || e.name === "Error") return reply(res, 400, { error: e.message }); // bad inputs
    console.error("predict failed:", e); // never a dropped connection: the client learns that the server failed
    return reply(res, 500, { error: "internal error" });
  }
});
server.listen({ port, host: "127.0.0.1", backlog: 1024 }, () => console.log(`serving on http://127.0.0.1:${port}/predict`));
