// The device bench's file reader and metrics (src/data.js, src/metrics.js), as kdedge_runtime reads and scores.
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";

import { DataError, readLabelled } from "../src/data.js";
import { METRICS } from "../src/metrics.js";

const dir = mkdtempSync(path.join(os.tmpdir(), "kdedge-data-"));
const file = (name, text) => { const p = path.join(dir, name); writeFileSync(p, text); return p; };

test("CSV quoting, TSV without quoting, JSON lines", () => {
  const csv = file("a.csv", 'text,label\n"a, ""quoted""\nline",pos\nplain,neg\n');
  assert.deepEqual(readLabelled(csv, ["text", "label"], true, ["neg", "pos"]),
    { texts: ['a, "quoted"\nline', "plain"], pairs: null, labels: [1, 0] });
  const tsv = file("b.tsv", '\ufeffsentence\tlabel\n"not quoted" here \t1\r\n\nsecond\t0\n');
  assert.deepEqual(readLabelled(tsv, ["sentence", "label"], true, ["0", "1"]).texts, ['"not quoted" here', "second"]);
  const pairs = file("c.jsonl", '{"a": "x", "b": "y", "s": 4.5}\n\n{"a": "z", "b": "w", "s": "1"}\n');
  assert.deepEqual(readLabelled(pairs, ["a", "b", "s"], true, null), { texts: ["x", "z"], pairs: ["y", "w"], labels: [4.5, 1] });
  const positional = file("d.tsv", "src\t1\t\tgood\nsrc\t0\t*\tbad\n");
  assert.deepEqual(readLabelled(positional, [3, 1], false, ["0", "1"]).labels, [1, 0]);
});

test("every bad file is one DataError naming the file, line and column", () => {
  const cases = [
    [file("e.tsv", "sentence\tlabel\nok\t1\nstray\ttab\t1\n"), ["sentence", "label"], "line 3: 3 field(s), but the header has 2 (a stray tab"],
    [file("f.tsv", "sentence\tlabel\nok\t7\n"), ["sentence", "label"], "line 2, column 'label': unknown label '7' (expected one of: 0, 1)"],
    [file("g.tsv", "text\tlabel\nok\t1\n"), ["sentence", "label"], "column 'sentence' not found; the header has: text, label"],
    [file("h.jsonl", '{"sentence": "x"}\n'), ["sentence", "label"], "line 1: column 'label' is missing"],
    [file("i.jsonl", '{"sentence": ["x"], "label": "1"}\n'), ["sentence", "label"], "expected a string or a number, not a JSON list"],
    [file("j.csv", 'sentence,label\n"open,1\n'), ["sentence", "label"], "an unclosed quote"],
    [path.join(dir, "missing.tsv"), ["sentence", "label"], "data file not found"],
  ];
  for (const [p, columns, message] of cases) {
    assert.throws(() => readLabelled(p, columns, true, ["0", "1"]), (e) => e instanceof DataError && e.message.includes(message), message);
  }
});

test("names and values from the file are echoed on one line (a quoted line break in a CSV header)", () => {
  // kdedge_runtime/data.py writes the same messages (tests/test_untrusted_input.py)
  const header = file("k.csv", '"text\r\nmore",label\nok,1\n');
  assert.throws(() => readLabelled(header, ["text", "label"], true, ["0", "1"]), (e) => e instanceof DataError &&
    e.message.endsWith("k.csv: column 'text' not found; the header has: text\\r\\nmore, label"));
  const label = file("l.csv", 'text,label\nok,"1\u2028\u0000\u001ex"\n');
  assert.throws(() => readLabelled(label, ["text", "label"], true, ["0", "1"]), (e) => e instanceof DataError &&
    e.message.endsWith("line 2, column 'label': unknown label '1\\u2028\\u0000\\u001ex' (expected one of: 0, 1)"));
  const score = file("m.jsonl", '{"text": "ok", "label": "\\ud800"}\n');
  assert.throws(() => readLabelled(score, ["text", "label"], true, null), (e) => e instanceof DataError &&
    e.message.endsWith("line 1, column 'label': '\\ud800' is not a number"));
});

test("metrics: F1, MCC and rank correlation with ties", () => {
  assert.equal(METRICS.f1([1, 1, 0, 0], [1, 0, 1, 0]), 0.5);
  assert.equal(METRICS.matthews_correlation([1, 1, 0, 0], [1, 1, 0, 0]), 1);
  assert.equal(METRICS.matthews_correlation([1, 1, 1], [1, 1, 1]), 0);
  assert.ok(Math.abs(METRICS.spearmanr([1, 2, 2, 3], [1, 3, 3, 2]) - 1 / 3) < 1e-12); // scipy.stats.spearmanr
  assert.equal(METRICS.pearson([1, 2, 3], [5, 5, 5]), 0);
});
