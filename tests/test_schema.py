"""The bundle format's JSON Schema (export/schema/manifest.schema.json) and the runtimes agree: every bundle kdedge
writes is valid, and the schema refuses exactly the manifests the runtimes refuse (export/node/test/schema.test.js
holds the JavaScript core to the same cases)."""

import copy
import json
import math
import shutil
from pathlib import Path

import pytest

from kdedge_runtime import BundleError, Classifier
from kdedge_runtime.manifest import BUNDLE_FORMAT, INPUT_NAMES, check_manifest, read_manifest
from tests.conftest import _distil, export_tiny

jsonschema = pytest.importorskip("jsonschema")

SCHEMA_DIR = Path(__file__).resolve().parents[1] / "export" / "schema"
SCHEMA = json.loads((SCHEMA_DIR / "manifest.schema.json").read_text())
CASES = json.loads((SCHEMA_DIR / "conformance.json").read_text())["cases"]
EXAMPLES = sorted((SCHEMA_DIR / "examples").glob("*.json"))
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def schema_errors(manifest) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in VALIDATOR.iter_errors(manifest)]


def runtime_error(manifest) -> str | None:
    try:
        check_manifest(copy.deepcopy(manifest), "manifest.json")
    except BundleError as e:
        return str(e)
    return None


def apply(case: dict, base: dict):
    if "replace" in case:
        return copy.deepcopy(case["replace"])
    manifest = copy.deepcopy(base)
    for path in case.get("delete", []):
        node = manifest
        for key in path[:-1]:
            node = node[key]
        node.pop(path[-1], None)
    for path, value in case.get("set", []):
        node = manifest
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return manifest


def test_the_schema_is_a_versioned_draft_2020_12_schema_that_describes_every_field():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert SCHEMA["$id"].endswith(":1.2") and SCHEMA["properties"]["format"]["const"] == BUNDLE_FORMAT
    assert SCHEMA["$defs"]["input"]["properties"]["name"]["enum"] == list(INPUT_NAMES)

    def described(node, where):
        for name, field in node.get("properties", {}).items():
            assert field.get("description"), f"{where}.{name} has no description"
            described(field, f"{where}.{name}")
        if isinstance(node.get("items"), dict):
            described(node["items"], f"{where}[]")

    described(SCHEMA, "manifest")
    for name, definition in SCHEMA["$defs"].items():
        described(definition, f"$defs.{name}")
    # every field kdedge writes is in the schema
    for example in EXAMPLES:
        manifest = json.loads(example.read_text())
        assert set(manifest) <= set(SCHEMA["properties"]), example.name
        for block in ("task", "tokenizer", "quantization", "transforms", "dev", "parity", "file_layout"):
            assert set(manifest[block]) <= set(SCHEMA["properties"][block]["properties"]), f"{example.name}: {block}"


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_the_example_manifests_are_valid(example):
    manifest = json.loads(example.read_text())
    assert schema_errors(manifest) == [] and runtime_error(manifest) is None


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["name"])
def test_the_schema_refuses_exactly_what_the_runtime_refuses(case):
    manifest = apply(case, json.loads((SCHEMA_DIR / "examples" / f"{case['base']}.json").read_text()))
    schema, runtime = schema_errors(manifest), runtime_error(manifest)
    if case["error"] is None:
        assert schema == [] and runtime is None, (schema, runtime)
    else:
        assert schema, f"the schema accepts what the runtime refuses: {runtime}"
        assert runtime is not None and case["error"] in runtime, runtime
        assert "\n" not in runtime and runtime.startswith("manifest.json")


def test_integers_written_as_floats_are_read_as_ints():
    manifest = json.loads((SCHEMA_DIR / "examples" / "tinybert-sst2-fp32.json").read_text())
    manifest["max_length"], manifest["tokenizer"]["pad_token_id"] = 64.0, 0.0
    checked = check_manifest(manifest, "manifest.json")
    assert type(checked["max_length"]) is int and type(checked["tokenizer"]["pad_token_id"]) is int


@pytest.mark.parametrize("text", ['{"max_length": NaN}', '{"max_length": Infinity}', '{"a": -Infinity}'])
def test_non_json_constants_are_refused_as_javascript_refuses_them(tmp_path, text):
    (tmp_path / "model.onnx").write_bytes(b"")
    (tmp_path / "manifest.json").write_text(text)
    with pytest.raises(BundleError, match=r"manifest.json is not valid JSON \(.* is not JSON\)"):
        read_manifest(tmp_path)


# ---------------------------------------------------------------------------------------------- real bundles

@pytest.fixture(scope="module")
def every_kind_of_bundle(tiny_bundles, tiny_tinybert_student, tiny_teacher, tiny_pair_teacher, glue_dir, glove_path,
                         tmp_path_factory) -> dict[str, Path]:
    """A bundle of each kind kdedge writes: BiLSTM (word vocabulary) and transformer (WordPiece) students, fp32,
    dynamic / static / QAT int8, fp16, the optimizer's fused graph, without the first-token transform, and pair
    tasks (a joint cross-encoder and a separate siamese BiLSTM, both regression)."""
    root = tmp_path_factory.mktemp("schema-bundles")
    bundles = dict(tiny_bundles)
    for name, kw in (("tinybert-static", dict(quantize="static", calibration_size=32)),
                     ("tinybert-fp16", dict(fp16=True)),
                     ("tinybert-optimized-dynamic", dict(optimize=True, quantize="dynamic")),
                     ("tinybert-no-first-token", dict(first_token=False))):
        bundles[name] = export_tiny(tiny_tinybert_student, glue_dir, root / name, **kw)
    qat = _distil(tmp_path_factory, tiny_teacher, glue_dir, "schema-qat", student="tinybert", layers=1,
                  init="teacher-layers", lr=1e-3, epochs=1, max_train_samples=200, qat=True, qat_epochs=1)
    bundles["tinybert-qat"] = export_tiny(qat, glue_dir, root / "tinybert-qat", quantize="qat")
    common = dict(task="stsb", max_train_samples=300, max_eval_samples=100, epochs=1)
    joint = _distil(tmp_path_factory, tiny_pair_teacher, glue_dir, "schema-joint", student="tinybert", layers=1,
                    init="teacher-layers", lr=1e-3, **common)
    separate = _distil(tmp_path_factory, tiny_pair_teacher, glue_dir, "schema-separate", word_vectors=str(glove_path),
                       lstm_hidden=16, mlp_hidden=16, lr=1e-2, **common)
    bundles["stsb-tinybert-joint"] = export_tiny(joint, glue_dir, root / "stsb-joint")
    bundles["stsb-bilstm-separate"] = export_tiny(separate, glue_dir, root / "stsb-separate")
    # as examples/ngram-sst2-int8-dynamic.json was made: its conformance cases run on this bundle
    ngram = _distil(tmp_path_factory, tiny_teacher, glue_dir, "schema-ngram", student="ngram", ngram_dim=16,
                    ngram_buckets=500, alpha=0.0, epochs=1)
    bundles["ngram-dynamic"] = export_tiny(ngram, glue_dir, root / "ngram-dynamic", quantize="dynamic")
    return bundles


def test_every_kind_of_bundle_kdedge_writes_is_valid(every_kind_of_bundle):
    seen = set()
    for name, bundle in every_kind_of_bundle.items():
        manifest = json.loads((bundle / "manifest.json").read_text())
        assert schema_errors(manifest) == [], name
        assert Classifier(bundle).manifest == manifest
        tokenizer = json.loads((bundle / manifest["tokenizer"]["file"]).read_text())
        model_type = "ngram" if "ngram" in manifest["tokenizer"] else tokenizer["model"]["type"]
        seen.add((manifest["architecture"], model_type, manifest["tokenizer"]["pair_encoding"],
                  manifest["task"]["is_regression"], manifest["precision"], manifest["quantization"]["scheme"]))
        seen.update(manifest["transforms"])
    for kind in (("bilstm", "WordLevel", None, False, "fp32", "none"), ("tinybert", "WordPiece", None, False, "int8", "dynamic"),
                 ("tinybert", "WordPiece", None, False, "int8", "static"), ("tinybert", "WordPiece", None, False, "int8", "qat"),
                 ("tinybert", "WordPiece", None, False, "fp16", "none"), ("tinybert", "WordPiece", "joint", True, "fp32", "none"),
                 ("bilstm", "WordLevel", "separate", True, "fp32", "none"), ("ngram", "ngram", None, False, "int8", "dynamic"),
                 "optimize", "first_token", "fp16"):
        assert kind in seen, kind


@pytest.fixture(scope="module")
def real_bundles(every_kind_of_bundle):
    return {"tinybert-sst2-fp32": every_kind_of_bundle["tinybert-none"],
            "bilstm-stsb-separate-regression": every_kind_of_bundle["stsb-bilstm-separate"],
            "tinybert-stsb-joint-regression": every_kind_of_bundle["stsb-tinybert-joint"],
            "ngram-sst2-int8-dynamic": every_kind_of_bundle["ngram-dynamic"]}


@pytest.mark.parametrize("case", [c for c in CASES if "replace" not in c], ids=lambda c: c["name"])
def test_a_real_bundle_with_each_case_is_refused_by_the_runtime_exactly_when_the_schema_refuses(case, real_bundles,
                                                                                                  tmp_path):
    bundle = tmp_path / "b"
    shutil.copytree(real_bundles[case["base"]], bundle)
    manifest = apply(case, json.loads((bundle / "manifest.json").read_text()))
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    schema = schema_errors(manifest)
    try:
        Classifier(bundle)
        error = None
    except BundleError as e:
        error = str(e)
    if schema:
        assert error is not None and case["error"] in error and error.startswith(str(bundle / "manifest.json")), error
    elif case["error"] is None and "refused at load" in case["name"]:
        assert error is not None and error == error.splitlines()[0], "a load-time check (model, tokenizer) refuses it"
    else:
        assert error is None, error


def test_the_runtime_and_the_schema_agree_on_the_untrusted_bundles_of_test_runtime(tiny_bundles, tmp_path):
    """tests/test_runtime.py's corrupted bundles: where the runtime's error is about the manifest alone, the schema
    refuses the manifest too; where it is about another file (links, model, tokenizer), the manifest is valid."""
    from tests.test_runtime import UNTRUSTED_BUNDLES, _corrupt

    for change, message in UNTRUSTED_BUNDLES:
        bundle = _corrupt(tiny_bundles["tinybert-none"], tmp_path, change)
        with pytest.raises(BundleError) as refused:
            Classifier(bundle)
        assert message in str(refused.value)
        manifest = json.loads((bundle / "manifest.json").read_text())
        manifest_alone = runtime_error(manifest)
        assert bool(schema_errors(manifest)) == (manifest_alone is not None), (message, manifest_alone)
        if manifest_alone is not None:  # the same refusal, whether the manifest is checked alone or in its bundle
            assert str(refused.value) == manifest_alone.replace("manifest.json", str(bundle / "manifest.json"), 1)


def test_numbers_that_are_not_finite_are_not_integers():
    manifest = json.loads((SCHEMA_DIR / "examples" / "tinybert-sst2-fp32.json").read_text())
    for value in (math.inf, -math.inf):
        manifest["max_length"] = value
        assert schema_errors(manifest) and runtime_error(manifest)
