// Labelled text files as kdedge reads them (the Python runtime's kdedge_runtime/data.py, with the same messages):
// CSV with standard quoting, TSV as GLUE writes it (no quoting at all), JSON lines. Columns by header name, or by
// position in a file without a header. Every problem is one DataError naming the file, the line and the column.
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";

export class DataError extends Error {
  constructor(message) { super(message); this.name = "DataError"; }
}

// A name or value read from a file or a flag, as a message echoes it (kdedge_runtime/data.py's `shown`): on one line,
// each control character, line separator or lone surrogate escaped as JSON writes it (\n, \u0000, \ud800).
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
const ESCAPES = { "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r" };
export function shown(value) {
  return String(value).replace(UNPRINTABLE, (c) => ESCAPES[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

// [line number, fields] per record of a CSV text: quoted fields may hold commas, doubled quotes and newlines.
function* csvRecords(text, file) {
  let fields = [], field = "", quoted = false, line = 1, start = 1, i = 0, touched = false;
  while (i < text.length) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i += 2; continue; }
      if (c === '"') { quoted = false; i += 1; continue; }
      if (c === "\n") line += 1;
      field += c; i += 1; continue;
    }
    if (c === '"' && field === "") { quoted = true; touched = true; i += 1; continue; }
    if (c === ",") { fields.push(field); field = ""; touched = true; i += 1; continue; }
    if (c === "\r" && text[i + 1] === "\n") { i += 1; continue; }
    if (c === "\n") {
      if (touched || field !== "") fields.push(field);
      if (fields.length) yield [start, fields];
      fields = []; field = ""; touched = false; line += 1; start = line; i += 1; continue;
    }
    field += c; touched = true; i += 1;
  }
  if (quoted) throw new DataError(`${file}, line ${start}: unexpected end of data (an unclosed quote)`);
  if (touched || field !== "") fields.push(field);
  if (fields.length) yield [start, fields];
}

function* tsvRecords(text) {
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i += 1) {
    const line = lines[i].endsWith("\r") ? lines[i].slice(0, -1) : lines[i];
    if (line !== "") yield [i + 1, line.split("\t")];
  }
}

function* delimitedRows(file, text, columns, header, tsv) {
  const records = tsv ? tsvRecords(text) : csvRecords(text, file);
  let idx, width = null;
  if (header) {
    const first = records.next();
    const names = first.done ? [] : first.value[1].map((n) => n.trim());
    if (!names.length) throw new DataError(`${file}: the file is empty`);
    const duplicated = names.find((n) => names.indexOf(n) !== names.lastIndexOf(n));
    if (duplicated !== undefined) {
      const at = names.map((n, i) => (n === duplicated ? String(i + 1) : null)).filter(Boolean);
      throw new DataError(`${file}, line 1: the header names column '${shown(duplicated)}' more than once (fields ` +
        `${at.join(", ")}); rename or drop the extra one`);
    }
    const missing = columns.filter((c) => !names.includes(c));
    if (missing.length) throw new DataError(`${file}: column '${shown(missing[0])}' not found; the header has: ${shown(names.join(", "))}`);
    idx = columns.map((c) => names.indexOf(c));
    width = names.length;
  } else {
    idx = columns.map(Number);
  }
  for (const [line, row] of records) {
    width = width ?? row.length;
    if (row.length !== width) {
      const what = header ? "the header has" : "the first row has";
      const lost = columns.filter((c, k) => idx[k] >= row.length);
      const hint = lost.length ? ` (column '${shown(lost[0])}' is missing)`
        : tsv ? " (a stray tab inside a text? TSV files are read without quoting)" : "";
      throw new DataError(`${file}, line ${line}: ${row.length} field(s), but ${what} ${width}${hint}`);
    }
    yield [line, idx.map((i) => row[i])];
  }
}

function* jsonlRows(file, text, columns) {
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i += 1) {
    if (!lines[i].trim()) continue;
    let record;
    try { record = JSON.parse(lines[i]); } catch (e) {
      throw new DataError(`${file}, line ${i + 1}: not valid JSON (${shown(e.message)})`);
    }
    if (record === null || typeof record !== "object" || Array.isArray(record)) {
      throw new DataError(`${file}, line ${i + 1}: expected a JSON object`);
    }
    for (const c of columns) {
      if (record[c] === undefined || record[c] === null) throw new DataError(`${file}, line ${i + 1}: column '${shown(c)}' is missing`);
      if (typeof record[c] === "object") {
        throw new DataError(`${file}, line ${i + 1}, column '${shown(c)}': expected a string or a number, not a JSON ` +
          `${Array.isArray(record[c]) ? "list" : "dict"}`);
      }
    }
    yield [i + 1, columns.map((c) => String(record[c]))];
  }
}

export function readRows(file, columns, header) {
  if (!existsSync(file)) throw new DataError(`data file not found: ${file}`);
  const suffix = path.extname(file).toLowerCase();
  const bytes = readFileSync(file);
  let text;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new DataError(`${file}: not valid UTF-8; save the file as UTF-8`);
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1); // a byte-order mark (MRPC has one)
  if ([".tsv", ".csv", ".txt"].includes(suffix)) return delimitedRows(file, text, columns, header, suffix !== ".csv");
  if ([".jsonl", ".json"].includes(suffix)) return jsonlRows(file, text, columns);
  throw new DataError(`${file}: unsupported file type '${suffix}' (use .csv, .tsv or .jsonl here)`);
}

// { texts, pairs (null unless the columns name two texts before the label), labels: class ids by position in
// labelValues (the raw values as the file writes them), or scores when labelValues is null (regression) }.
export function readLabelled(file, columns, header, labelValues) {
  const texts = [], pairs = [], labels = [];
  const isPair = columns.length === 3;
  const labelCol = columns[columns.length - 1];
  for (const [line, values] of readRows(file, columns, header)) {
    const raw = values[values.length - 1].trim();
    if (labelValues === null) {
      const score = raw === "" ? NaN : Number(raw);
      if (Number.isNaN(score)) throw new DataError(`${file}, line ${line}, column '${shown(labelCol)}': '${shown(raw)}' is not a number`);
      if (!Number.isFinite(score)) throw new DataError(`${file}, line ${line}, column '${shown(labelCol)}': '${shown(raw)}' is not a finite number`);
      labels.push(score);
    } else {
      if (!raw) throw new DataError(`${file}, line ${line}, column '${shown(labelCol)}': the label is empty`);
      const id = labelValues.indexOf(raw);
      if (id < 0) {
        throw new DataError(`${file}, line ${line}, column '${shown(labelCol)}': unknown label '${shown(raw)}' ` +
          `(expected one of: ${shown(labelValues.join(", "))})`);
      }
      labels.push(id);
    }
    texts.push(values[0].trim());
    if (isPair) pairs.push(values[1].trim());
  }
  if (!texts.length) throw new DataError(`${file}: no data rows`);
  return { texts, pairs: isPair ? pairs : null, labels };
}
