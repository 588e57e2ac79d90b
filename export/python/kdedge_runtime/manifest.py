"""A bundle's manifest.json, checked field by field: the rules of export/schema/manifest.schema.json, by hand.

A bundle is untrusted input, so a runtime refuses any manifest the schema refuses, and only those; each refusal is
one line naming the first wrong field. export/core/src/manifest.js holds the same rules in the same order with the
same messages (the JavaScript runtimes), and tests/test_schema.py and export/node/test/schema.test.js hold all three
to the schema.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from kdedge_runtime.ngram import NgramRulesError, check_tokenizer

BUNDLE_FORMAT = "kdedge-bundle/1"
# The inputs a runtime knows how to feed (padded with the pad token: the ids; with 0: masks and type ids).
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids", "input_ids_b", "attention_mask_b")
SEPARATE_INPUTS = ("input_ids_b", "attention_mask_b")  # the second text of a "separate" (siamese) pair
MAX_INDEX = 2**31 - 1  # the largest max_length and pad_token_id (tokenizers and ONNX Runtime index with 32 bits)
# A file named in the manifest: a relative path inside the bundle folder, read the same way from a disk and a URL
# (no "..", no leading "/", no backslash, drive colon, percent escape, query or fragment).
FILE_NAME = re.compile(r"^(?!/)(?!(?:.*/)?\.\.(?:/|$))[^\\:%?#\u0000-\u001f]+$")


class BundleError(ValueError):
    """The bundle folder is missing, incomplete or does not match its manifest."""


def _integer(v) -> bool:  # JSON's integers: 3 and 3.0 are the same number (JSON Schema, JavaScript)
    return (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer())


def _column(v) -> bool:
    return isinstance(v, str) or (_integer(v) and v >= 0)


_KINDS = {
    "string": ("a string", lambda v: isinstance(v, str)),
    "boolean": ("true or false", lambda v: isinstance(v, bool)),
    "number": ("a number", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)),
    "object": ("an object", lambda v: isinstance(v, dict)),
    "strings": ("a list of strings", lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v)),
    "count": ("a positive integer", lambda v: _integer(v) and v > 0),
    "id": ("a non-negative integer", lambda v: _integer(v) and v >= 0),
    "size": ("a non-negative integer", lambda v: _integer(v) and v >= 0),
    "pairing": ('null, "joint" or "separate"', lambda v: v in (None, "joint", "separate")),
    "names": ('a list of {"name": "..."} objects',
              lambda v: isinstance(v, list) and all(isinstance(x, dict) and isinstance(x.get("name"), str) for x in v)),
    "sha256": ("a sha256 hex digest", lambda v: isinstance(v, str) and len(v) == 64
               and all(c in "0123456789abcdef" for c in v)),
    "columns": ("a list of 2 or 3 column names or positions",
                lambda v: isinstance(v, list) and 2 <= len(v) <= 3 and all(_column(c) for c in v)),
    "label_values": ("null or a list of strings",
                     lambda v: v is None or (isinstance(v, list) and all(isinstance(x, str) for x in v))),
}
_BOUNDED = ("count", "id")  # at most MAX_INDEX

# The fields a runtime reads to load and run a bundle, and what each must be; export/core/src/manifest.js holds the
# same list, so every runtime refuses the same bundles with the same messages.
MANIFEST_FIELDS = (
    (("format",), "string"), (("task", "name"), "string"), (("task", "is_pair"), "boolean"),
    (("task", "is_regression"), "boolean"), (("label_names",), "strings"), (("max_length",), "count"),
    (("tokenizer", "file"), "string"), (("tokenizer", "add_special_tokens"), "boolean"),
    (("tokenizer", "pair_encoding"), "pairing"), (("tokenizer", "pad_token_id"), "id"), (("inputs",), "names"),
    (("outputs",), "names"), (("files", "model.onnx", "sha256"), "sha256"),
)
# Fields a bundle may leave out (older exports, other writers) but that must be well formed when present: what the
# device benches and the reports read, and the record kdedge export keeps (whose contents the schema leaves open).
OPTIONAL_FIELDS = (
    (("task", "label_names"), "strings"), (("task", "metrics"), "strings"), (("architecture",), "string"),
    (("parameters",), "size"), (("opset",), "count"), (("precision",), "string"), (("quantization",), "object"),
    (("quantization", "scheme"), "string"), (("quantization", "preset"), "string"), (("transforms",), "object"),
    (("dev",), "object"), (("parity",), "object"), (("files", "model.onnx", "bytes"), "size"),
    (("student",), "object"), (("config",), "object"), (("versions",), "object"), (("data",), "object"),
    (("file_layout",), "object"), (("file_layout", "columns"), "columns"), (("file_layout", "header"), "boolean"),
    (("file_layout", "label_values"), "label_values"), (("export_time_s",), "number"),
)
_MISSING = object()


def _shown(value, limit: int = 60) -> str:  # as JavaScript's JSON.stringify writes it: both runtimes' words alike
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)[:limit]


def _reject_constant(name: str):
    raise ValueError(f"{name} is not JSON")  # Python's json reads NaN and Infinity; JSON (and JavaScript) do not


def read_manifest(path: Path) -> dict:
    """The bundle's manifest, checked field by field; a BundleError names the first field that is wrong."""
    if not path.is_dir():
        raise BundleError(f"{path} is not a folder: give the bundle folder written by `kdedge export`")
    missing = [f for f in ("manifest.json", "model.onnx") if not (path / f).is_file()]
    if missing:
        raise BundleError(f"{path} is not a complete kdedge bundle: {', '.join(missing)} missing")
    manifest_file = path / "manifest.json"
    try:
        manifest = json.loads(manifest_file.read_text(encoding="utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as e:
        raise BundleError(f"{manifest_file} is not valid JSON ({e})") from None
    except RecursionError:  # Python's JSON reader recurses once per level: some hundreds of [ are enough
        raise BundleError(f"{manifest_file} is not valid JSON (nested too deeply)") from None
    check_manifest(manifest, str(manifest_file))
    bundle_file(path, manifest["tokenizer"]["file"], "tokenizer.file")
    return manifest


def check_manifest(manifest, where: str) -> dict:
    """`manifest` (parsed JSON) checked against the bundle format; `where` names it in messages. Integers written
    as 3.0 are made ints. Returns the manifest; raises a BundleError naming the first field that is wrong."""
    if not isinstance(manifest, dict):
        raise BundleError(f"{where} is not valid JSON (expected an object)")
    if manifest.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{where} has format {json.dumps(manifest.get('format'))}; this runtime reads "
                          f"{json.dumps(BUNDLE_FORMAT)}")
    for fields, required in ((MANIFEST_FIELDS, True), (OPTIONAL_FIELDS, False)):
        for keys, kind in fields:
            parent, value = None, manifest
            for key in keys:
                parent, value = value, value.get(key, _MISSING) if isinstance(value, dict) else _MISSING
            if value is _MISSING and not required:
                continue
            name, (description, accepts) = ".".join(keys), _KINDS[kind]
            if value is _MISSING:
                raise BundleError(f"{where}: field '{name}' is missing")
            if not accepts(value):
                raise BundleError(f"{where}: field '{name}' must be {description}, not {_shown(value)}")
            if kind in _BOUNDED and value > MAX_INDEX:
                raise BundleError(f"{where}: field '{name}' must be at most {MAX_INDEX}, not {_shown(value)}")
            if isinstance(value, float) and kind in ("count", "id", "size"):
                parent[keys[-1]] = int(value)
    task, rules = manifest["task"], manifest["tokenizer"]
    if not task["is_regression"] and not manifest["label_names"]:
        raise BundleError(f"{where}: field 'label_names' is empty for a classification task")
    if task["is_pair"] and rules["pair_encoding"] is None:
        raise BundleError(f"{where}: field 'tokenizer.pair_encoding' must be \"joint\" or \"separate\" for a "
                          "sentence-pair task, not null")
    if not task["is_pair"] and rules["pair_encoding"] is not None:
        raise BundleError(f"{where}: field 'tokenizer.pair_encoding' must be null for a single-sentence task, not "
                          f"{_shown(rules['pair_encoding'])}")
    names = [i["name"] for i in manifest["inputs"]]
    unknown = [n for n in names if n not in INPUT_NAMES]
    if unknown:
        raise BundleError(f"{where}: field 'inputs' names {_shown(unknown[0])}, which no runtime feeds "
                          f"(it feeds {', '.join(INPUT_NAMES)})")
    if "input_ids" not in names:
        raise BundleError(f"{where}: field 'inputs' must list \"input_ids\"")
    separate = rules["pair_encoding"] == "separate"
    if separate != ("input_ids_b" in names) or (not separate and "attention_mask_b" in names):
        raise BundleError(f"{where}: field 'inputs' must list input_ids_b exactly when 'tokenizer.pair_encoding' is "
                          f"\"separate\" (and attention_mask_b only then), not {_shown(names, 80)}")
    if not FILE_NAME.match(rules["file"]):
        raise BundleError(f"{where}: field 'tokenizer.file' points outside the bundle ({rules['file']}); a bundle's "
                          "files are named by relative paths inside its folder")
    if "ngram" in rules:  # the n-gram student's tokenizer: rules this runtime implements, or a refusal
        try:
            check_tokenizer(rules, where)
        except NgramRulesError as e:
            raise BundleError(str(e)) from None
    return manifest


def bundle_file(bundle: Path, name: str, field: str | None = None) -> Path:
    """A file of the bundle, refused unless it lies inside the bundle folder (after links are followed);
    `field` names the manifest field the name came from."""
    root = bundle.resolve()
    target = (bundle / name).resolve()
    if root not in target.parents:
        where = f"{bundle / 'manifest.json'}: field '{field}' points" if field else f"{bundle / name} links"
        raise BundleError(f"{where} outside the bundle ({name}); a bundle's files must lie inside its folder")
    try:
        found = target.is_file()
    except OSError:  # a name no file can have (over 255 bytes: ENAMETOOLONG): missing, as the Node runtime says
        found = False
    if not found:
        raise BundleError(f"{bundle} is not a complete kdedge bundle: {name} missing")
    return target
