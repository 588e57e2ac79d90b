// The bundle format's JSON Schema (export/schema/manifest.schema.json) and the JavaScript core's manifest checks
// (kdedge-runtime-core's parseManifest, which Node and the browser use) agree: the example manifests are valid, and on
// every conformance case (export/schema/conformance.json: the bad manifests of tests/test_runtime.py and
// export/web/test, and the rest of the format) the schema refuses exactly what the core refuses, in the words the
// case names. tests/test_schema.py holds the Python runtime to the same cases.
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import Ajv2020 from "ajv/dist/2020.js";
import { BUNDLE_FORMAT, BundleError, parseManifest } from "kdedge-runtime-core";

const SCHEMA_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "schema");
const read = (...parts) => JSON.parse(readFileSync(path.join(SCHEMA_DIR, ...parts), "utf8"));
const schema = read("manifest.schema.json");
const { cases } = read("conformance.json");
const examples = readdirSync(path.join(SCHEMA_DIR, "examples")).filter((f) => f.endsWith(".json")).sort();
const validate = new Ajv2020({ strict: true, allErrors: true }).compile(schema);

const schemaErrors = (manifest) => (validate(manifest) ? [] : validate.errors.map((e) => `${e.instancePath} ${e.message}`));
function coreError(manifest) {
  try {
    parseManifest(JSON.stringify(manifest), "manifest.json");
    return null;
  } catch (e) {
    assert.ok(e instanceof BundleError, `${e.name}: ${e.message}`);
    return e.message;
  }
}

function apply(c, base) {
  if ("replace" in c) return structuredClone(c.replace);
  const manifest = structuredClone(base);
  const parentOf = (keys) => keys.slice(0, -1).reduce((node, key) => node[key], manifest);
  for (const keys of c.delete ?? []) delete parentOf(keys)[keys.at(-1)];
  for (const [keys, value] of c.set ?? []) parentOf(keys)[keys.at(-1)] = value;
  return manifest;
}

test("the schema compiles in strict mode and names the format the core reads", () => {
  assert.equal(schema.$schema, "https://json-schema.org/draft/2020-12/schema");
  assert.equal(schema.properties.format.const, BUNDLE_FORMAT);
  assert.match(schema.$id, /:1\.2$/);
});

test("every example manifest is valid for the schema and the core", () => {
  assert.ok(examples.length >= 8);
  for (const name of examples) {
    const manifest = read("examples", name);
    assert.deepEqual(schemaErrors(manifest), [], name);
    assert.equal(coreError(manifest), null, name);
  }
});

for (const c of cases) {
  test(`conformance: ${c.name}`, () => {
    const manifest = apply(c, read("examples", `${c.base}.json`));
    const schemaSays = schemaErrors(manifest);
    const core = coreError(manifest);
    if (c.error === null) {
      assert.deepEqual([schemaSays, core], [[], null]);
    } else {
      assert.ok(schemaSays.length, `the schema accepts what the core refuses: ${core}`);
      assert.ok(core?.startsWith("manifest.json") && core.includes(c.error) && !core.includes("\n"), core);
    }
  });
}

test("text that is not JSON (NaN, Infinity) is refused before any field is read", () => {
  for (const text of ['{"max_length": NaN}', '{"max_length": Infinity}', "{ nope"]) {
    assert.throws(() => parseManifest(text, "manifest.json"),
      (e) => e instanceof BundleError && e.message.startsWith("manifest.json is not valid JSON ("));
  }
});
