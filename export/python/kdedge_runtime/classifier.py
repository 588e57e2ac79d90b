"""Load a bundle written by `kdedge export`, tokenize as the student was trained, run it, decode the logits.

Tokenization follows the bundle's manifest: the tokenizer's own template (special tokens on or off),
truncation to the bundle's max length (longest-first for joint pairs, as `transformers` does), pairs joined
into one sequence for cross-encoders or encoded side by side for siamese students, padding with the
manifest's pad id. Batches are sorted by length so padding stays small; results come back in input order.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from kdedge_runtime import ngram, ngram_model, plugins
from kdedge_runtime.graph import check_tensor_sizes
from kdedge_runtime.manifest import BUNDLE_FORMAT, BundleError, bundle_file, read_manifest  # noqa: F401 (re-exported)
from kdedge_runtime.session import session_options
from kdedge_runtime.wordcache import WordCache

_ID_INPUTS = ("input_ids", "input_ids_b")  # padded with the pad token; masks and type ids with 0
# Where each model input's values come from: (0: the text's encoding, or the joint pair's; 1: the second text's,
# encoded on its own for siamese students), and the encoding's attribute.
_INPUT_SOURCES = {"input_ids": (0, "ids"), "attention_mask": (0, "attention_mask"), "token_type_ids": (0, "type_ids"),
                  "input_ids_b": (1, "ids"), "attention_mask_b": (1, "attention_mask")}
# Quantization schemes that quantize activations on the fly, each range taken over the whole input tensor: a row's
# logits then depend on the other rows of its batch and their padding, so accuracy is scored one example at a time
# (the way an app at the edge calls the bundle, and the one score that does not depend on the batch).
DYNAMIC_SCHEMES = frozenset({"dynamic", "qat"})
# ONNX Runtime's words when a Gather's index is past its table (export/core/src/classifier.js reads the same)
_OUT_OF_TABLE = "out of data bounds"


# not frozen: a frozen dataclass's __init__ costs a tenth of a compiled n-gram call. ngram_model.Predictor makes
# instances in C, filling the three slots without __init__: keep __init__ to setting them
@dataclass(slots=True)
class Prediction:
    label: str | None  # None for regression tasks
    score: float  # the label's probability; the predicted value for regression
    logits: list[float]


class Classifier:
    def __init__(self, bundle_dir: str | Path, *, providers: Sequence[str] | None = None,
                 threads: int | None = None, verify_checksum: bool = True, compiled: bool = True):
        """`compiled`: run the n-gram student's model in the runtime's compiled code where its graph allows
        (kdedge_runtime/ngram_model.py; on the CPU provider alone); False runs every model in ONNX Runtime."""
        self.path = Path(bundle_dir)
        self.manifest = read_manifest(self.path)
        model_file = bundle_file(self.path, "model.onnx")
        model_bytes = model_file.read_bytes()
        if verify_checksum:
            _check_checksum(model_bytes, model_file, self.manifest)
        check_tensor_sizes(model_bytes, model_file)
        providers = list(providers or ["CPUExecutionProvider"])
        options = session_options(providers, threads)
        plugged = [p for p in providers if plugins.is_plugin(p)]
        for provider in plugged:  # e.g. OpenVINO from onnxruntime-ep-openvino: attached per device, CPU as fallback
            plugins.attach(options, provider)
        try:
            # from the bytes checked above, not the file: read once, and what runs is what was checked
            self.session = ort.InferenceSession(model_bytes, options, providers=None if plugged else providers)
        except Exception as e:  # ONNX Runtime raises its own types for a file it cannot parse
            raise BundleError(f"{model_file} is not a model ONNX Runtime can load ({_first_line(e)})") from None
        # the n-gram student's model without ONNX Runtime's cost per run; None: every run goes to the session
        self._compiled = (ngram_model.compile_graph(model_bytes) if compiled and providers == ["CPUExecutionProvider"]
                          and "ngram" in self.manifest["tokenizer"] else None)
        del model_bytes  # a teacher's is hundreds of MB, and the session holds its own copy
        self.input_names = [i.name for i in self.session.get_inputs()]
        for kind, actual in (("inputs", self.input_names), ("outputs", [o.name for o in self.session.get_outputs()])):
            expected = [i["name"] for i in self.manifest[kind]]
            if sorted(actual) != sorted(expected) or (kind == "outputs" and "logits" not in actual):
                raise BundleError(f"{model_file} has {kind} {json.dumps(actual)} but the manifest lists "
                                  f"{json.dumps(expected)}: the model and manifest come from different exports")
        rules = self.manifest["tokenizer"]
        tokenizer_file = self._tokenizer_file = bundle_file(self.path, rules["file"], "tokenizer.file")
        try:
            spec = None  # tokenizer.json as the library reads it, serialised once (20 ms for BERT's vocabulary)
            if "ngram" in rules:  # the n-gram student's word list and hashing (kdedge_runtime.ngram)
                self.tokenizer = ngram.load(tokenizer_file, rules["ngram"])
            else:
                self.tokenizer = Tokenizer.from_file(str(tokenizer_file))
                spec = json.loads(self.tokenizer.to_str())
                _check_tokenizer(self.tokenizer, spec, rules, self.max_length)
        except Exception as e:  # the tokenizers library raises a bare Exception for a broken file
            raise BundleError(f"{tokenizer_file} is not a valid tokenizer ({_first_line(e)})") from None
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(self.max_length, strategy="longest_first")
        self.add_special_tokens = rules["add_special_tokens"]
        self.pair_encoding = rules["pair_encoding"]  # None (single sentences), "joint" or "separate"
        self.pad_token_id = rules["pad_token_id"]
        # what every call reads, looked up once: for the smallest students, everything around the model's run counts
        self._label_names = tuple(self.manifest["label_names"])
        self._regression = self.is_regression
        self._sources = [(name, *_INPUT_SOURCES[name], self.pad_token_id if name in _ID_INPUTS else 0)
                         for name in self.input_names if name in _INPUT_SOURCES]
        # one text's ids without an Encoding, where the tokenizer has such a path: `row(text)`, None when it does not
        # apply to that text (the n-gram tokenizer's always does); with them, the other inputs are constant
        self._pair = self.is_pair
        self._words = (WordCache.of(self.tokenizer, self.add_special_tokens, self.max_length, spec)
                       if isinstance(self.tokenizer, Tokenizer) else self.tokenizer)
        self._constant_inputs = [(name, {"attention_mask": 1, "type_ids": 0}[attribute])
                                 for name, _, attribute, _ in self._sources if attribute != "ids"]
        self._check_vocabulary(tokenizer_file, model_file)
        self._check_compiled()
        # predict's path for one ASCII text on the compiled model (classification): the compiled tokenizer's ids,
        # the model's run and its decoding in one C call that makes the Prediction (ngram_model.Predictor)
        ascii_ids = self.tokenizer.ascii_ids if self._compiled is not None else None
        self._one = (ngram_model.Predictor(self._compiled, ascii_ids, self.tokenizer.max_words, self._label_names,
                                           Prediction)
                     if ascii_ids is not None and not self._regression else None)

    @property
    def labels(self) -> list[str]:
        return list(self.manifest["label_names"])

    @property
    def max_length(self) -> int:
        return int(self.manifest["max_length"])

    @property
    def quantization(self) -> dict:
        """The manifest's int8 description (scheme, preset, ...); empty for float bundles."""
        value = self.manifest.get("quantization")
        return value if isinstance(value, dict) else {}

    @property
    def is_pair(self) -> bool:
        return bool(self.manifest["task"]["is_pair"])

    @property
    def is_regression(self) -> bool:
        return bool(self.manifest["task"]["is_regression"])

    def predict(self, texts: str | Sequence[str], pairs: str | Sequence[str] | None = None, *,
                batch_size: int = 32) -> Prediction | list[Prediction]:
        """One Prediction for one text (and pair); a list for a list. Text that is not valid Unicode (lone
        surrogates, which Python makes of bytes that are not UTF-8) is read with each of them replaced by U+FFFD, as
        UTF-8 decoding with errors="replace" reads such bytes; anything but strings is a TypeError."""
        if self._one is not None and pairs is None and type(texts) is str and batch_size > 0:
            # an app's usual call to the compiled n-gram model, a few microseconds in all: one C call, decoded as
            # `_decode` decodes. None for text that is not ASCII or gives no ids (the padding rule of `pad` applies),
            # and on a failure the path below names the part that failed
            try:
                prediction = self._one(texts)
            except Exception:
                prediction = None
            if prediction is not None:
                return prediction
        short = self._short(texts, pairs, batch_size)
        if short is not None:
            return self._decode(short)
        # a few floats a row: plain Python decodes them faster than NumPy's per-call cost
        predictions = [self._decode(row) for row in self.logits(texts, pairs, batch_size=batch_size).tolist()]
        return predictions[0] if isinstance(texts, str) else predictions

    def logits(self, texts: str | Sequence[str], pairs: str | Sequence[str] | None = None, *,
               batch_size: int = 32) -> np.ndarray:
        short = self._short(texts, pairs, batch_size)
        if short is not None:
            return np.array([short], dtype=np.float32)
        one = isinstance(texts, str) and (pairs is None or isinstance(pairs, str))
        texts, pairs = self._check_inputs(texts, pairs)
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        if one:  # one text or pair: no sorting, no padding, the feed built straight from the encodings
            return self.run_batch(self._feed_of_one(texts[0], pairs[0] if pairs else None))
        features = self.encode(texts, pairs)
        lengths = features["lengths"]
        order = np.argsort(-lengths, kind="stable")
        out = np.empty((len(texts), 1 if self.is_regression else len(self.labels)), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            feed = self.pad([{k: v[i] for k, v in features.items() if k != "lengths"} for i in rows])
            out[rows] = self.run_batch(feed)
        return out

    @property
    def compiled(self) -> bool:
        """Whether the model runs in the runtime's compiled code (the n-gram student's), not in ONNX Runtime."""
        return self._compiled is not None

    def run_batch(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        """The logits of one padded batch (see `pad`)."""
        try:
            if self._compiled is not None:  # its one input: the ids
                ids = feed["input_ids"]
                return np.frombuffer(self._compiled.run(ids), dtype=np.float32).reshape(len(ids), -1)
            return self.session.run(["logits"], feed)[0]
        except Exception as e:
            raise self._model_failed(e) from None

    def _model_failed(self, error: Exception) -> BundleError:
        """The error for a model that fails on an input although the probe at load passed: it is broken."""
        return BundleError(f"{self.path / 'model.onnx'} failed on this input ({_first_line(error)})")

    def encode(self, texts: list[str], pairs: list[str] | None) -> dict:
        """Token ids per example (lists, unpadded) for each model input, plus each example's length."""
        kw = {"add_special_tokens": self.add_special_tokens}
        try:
            if pairs is not None and self.pair_encoding == "joint":
                encodings = (self.tokenizer.encode_batch(list(zip(texts, pairs)), **kw), None)
            else:
                encodings = (self.tokenizer.encode_batch(texts, **kw),
                             self.tokenizer.encode_batch(pairs, **kw) if pairs is not None else None)
        except BaseException as e:
            raise self._tokenizer_failed(e) from None
        features = {name: [getattr(e, attribute) for e in encodings[source]]
                    for name, source, attribute, _ in self._sources}
        lengths = [len(e.ids) for e in encodings[0]]
        if encodings[1] is not None:
            lengths = [a + len(e.ids) for a, e in zip(lengths, encodings[1])]
        features["lengths"] = np.asarray(lengths)
        return features

    def _short(self, texts, pairs, batch_size: int) -> list[float] | None:
        """The logits of one ASCII text (no pair) through the tokenizer's short path (`row(text)`, no Encoding, the
        feed built from the ids alone; for the compiled n-gram model, its ids as bytes and no array at all), or None
        where that path does not apply and `logits` takes over. An app's usual call: for the smallest students,
        everything around the model's run counts."""
        if (pairs is not None or not isinstance(texts, str) or self._words is None or self._pair or batch_size < 1
                or not texts.isascii()):  # ASCII: nothing for valid_text to replace
            return None
        try:
            packed = self.tokenizer.packed(texts) if self._compiled is not None else None
            row = self._words.row(texts) if packed is None else None
        except BaseException as e:
            raise self._tokenizer_failed(e) from None
        if packed is not None:  # the compiled n-gram model reads the ids as they come
            try:
                return self._compiled.one(packed) if packed else None  # no ids: the padding rule of `pad` applies
            except Exception as e:
                raise self._model_failed(e) from None
        if row is None or not row.size:  # no ids at all: the padding rule of `pad` applies
            return None
        feed = {"input_ids": row}  # one unpadded text: mask all ones, token types all zeros
        for name, fill in self._constant_inputs:
            feed[name] = np.full_like(row, fill)
        return self.run_batch(feed).tolist()[0]

    def _feed_of_one(self, text: str, pair: str | None) -> dict[str, np.ndarray]:
        """The feed of one example: what `pad(encode(...))` gives for it, without the batch machinery."""
        kw = {"add_special_tokens": self.add_special_tokens}
        try:
            if pair is not None and self.pair_encoding == "joint":
                encodings = (self.tokenizer.encode(text, pair, **kw), None)
            else:
                encodings = (self.tokenizer.encode(text, **kw),
                             self.tokenizer.encode(pair, **kw) if pair is not None else None)
        except BaseException as e:
            raise self._tokenizer_failed(e) from None
        return {name: np.array([getattr(encodings[source], attribute) or [fill]], dtype=np.int64)
                for name, source, attribute, fill in self._sources}

    def _tokenizer_failed(self, error: BaseException) -> BundleError:
        """The error for a tokenizer that breaks on a text its probe at load did not try."""
        return BundleError(f"{self._tokenizer_file} failed on this input ({_tokenizer_error(error)})")

    def pad(self, rows: list[dict]) -> dict[str, np.ndarray]:
        """Right-pad each input to the longest row (at least one position) as int64 arrays."""
        feed = {}
        for name in self.input_names:
            values = [r[name] for r in rows]
            width = max(1, max(len(v) for v in values))
            fill = self.pad_token_id if name in _ID_INPUTS else 0
            array = np.full((len(values), width), fill, dtype=np.int64)
            for i, v in enumerate(values):
                array[i, :len(v)] = v
            feed[name] = array
        return feed

    def _check_vocabulary(self, tokenizer_file: Path, model_file: Path) -> None:
        """Every id the tokenizer can emit must index the model's embedding table: one probe run at load,
        so a mismatch is a clear error now rather than a Gather failure on some later input."""
        size = self.tokenizer.get_vocab_size(with_added_tokens=True)
        if self.pad_token_id >= size:
            raise BundleError(f"{self.path / 'manifest.json'}: field 'tokenizer.pad_token_id' is {self.pad_token_id}, "
                              f"but {tokenizer_file.name} has only {size} tokens")
        probe = {name: [size - 1] if name in _ID_INPUTS else [1 if "mask" in name else 0] for name in self.input_names}
        try:
            logits = self.session.run(["logits"], self.pad([probe]))[0]
        except Exception as e:
            if _OUT_OF_TABLE not in str(e):  # not the embedding lookup: a model that cannot run at all
                raise BundleError(f"{model_file} failed on a probe input at load ({_first_line(e)})") from None
            raise BundleError(f"{tokenizer_file} has {size} tokens but the embedding table of {model_file} is smaller: "
                              "the tokenizer and the model come from different exports") from None
        # one logit per label (one score for regression), or the logits would not fit what the manifest says they
        # are; export/core/src/classifier.js refuses the same bundles with the same message
        width = logits.shape[-1] if getattr(logits, "ndim", 0) == 2 else None
        expected = 1 if self.is_regression else len(self.labels)
        if width != expected:
            given = f"{width} logits" if width is not None else f"logits of shape {list(np.shape(logits))}"
            said = ("field 'task.is_regression' is true" if self.is_regression
                    else f"field 'label_names' names {expected} labels")
            raise BundleError(f"{self.path / 'manifest.json'}: {said}, but {self.path / 'model.onnx'} gives {given}")

    def _check_compiled(self) -> None:
        """The compiled model and ONNX Runtime give the same logits on probe ids (up to 4,096 rows of the table,
        first and last among them, with padding, and a row of padding alone), or ONNX Runtime runs the model: the
        graph was matched node by node, so the two differ only in the order of float additions."""
        if self._compiled is None:
            return
        size = self.tokenizer.get_vocab_size(with_added_tokens=True)
        ids = np.unique(np.linspace(0, size - 1, min(size, 4096)).astype(np.int64))
        ids = np.concatenate([np.zeros(64, dtype=np.int64), ids, np.zeros(-len(ids) % 64, dtype=np.int64)])
        ids = ids.reshape(-1, 64)
        compiled = np.frombuffer(self._compiled.run(ids), dtype=np.float32).reshape(len(ids), -1)
        expected = self.session.run(["logits"], {"input_ids": ids})[0]
        if compiled.shape != expected.shape or not np.allclose(compiled, expected, rtol=1e-4, atol=1e-5,
                                                                equal_nan=True):
            self._compiled = None

    def _check_inputs(self, texts, pairs) -> tuple[list[str], list[str] | None]:
        texts = _as_strings(texts, "texts")
        if pairs is None:
            if self.is_pair:
                raise ValueError(f"this bundle's task ({self.manifest['task']['name']}) classifies sentence pairs: "
                                 "give pairs= as well")
            return texts, None
        if not self.is_pair:
            raise ValueError(f"this bundle's task ({self.manifest['task']['name']}) classifies single sentences: "
                             "drop pairs=")
        pairs = _as_strings(pairs, "pairs")
        if len(pairs) != len(texts):
            raise ValueError(f"got {len(texts)} texts but {len(pairs)} pairs")
        return texts, pairs

    def _decode(self, values: list[float]) -> Prediction:
        if self._regression:
            return Prediction(None, values[0], values)
        top = max(values)  # the softmax of the best label is exp(0) over the sum
        return Prediction(self._label_names[values.index(top)], 1.0 / sum([math.exp(v - top) for v in values]), values)


def _as_strings(value, name: str) -> list[str]:
    if isinstance(value, str):
        return [valid_text(value)]
    if isinstance(value, (bytes, bytearray)) or not isinstance(value, Sequence):
        raise TypeError(f"{name} must be a string or a list of strings, not {type(value).__name__}")
    bad = [type(v).__name__ for v in value if not isinstance(v, str)]
    if bad:
        raise TypeError(f"{name} must contain only strings; found {', '.join(sorted(set(bad)))}")
    return [valid_text(v) for v in value]


def valid_text(text: str) -> str:
    """`text` with each lone surrogate (what Python makes of bytes that are not UTF-8, and what the tokenizer
    refuses) replaced by U+FFFD; a surrogate pair becomes the character it encodes."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def scoring_batch_size(scheme: str | None, batched: int) -> int:
    """The batch size a bundle quantized with `scheme` (None: float) is scored at: 1 for DYNAMIC_SCHEMES, else
    `batched`."""
    return 1 if scheme in DYNAMIC_SCHEMES else batched


def _check_tokenizer(tokenizer: Tokenizer, spec: dict, rules: dict, max_length: int) -> None:
    """Refuses `tokenizer` (`spec` its JSON) now for what the tokenizers library finds only when a text needs it, as
    export/core/src/tokenizer.js refuses it at load: a model that maps the words it lacks to an unknown token
    (WordLevel, WordPiece; BPE where it names one) missing from its vocabulary, or a post-processor that cannot
    build the bundle's sequences (a template naming a special token it has no id for panics in Rust) or leaves no
    room for the text (truncation keeps every special id, so the sequence would outgrow `max_length`)."""
    unknown = getattr(tokenizer.model, "unk_token", None)
    if unknown is not None and tokenizer.model.token_to_id(unknown) is None:
        raise ValueError(f"model.unk_token {json.dumps(unknown)[:60]} is not in model.vocab")
    special = rules["add_special_tokens"]
    if special:
        size = tokenizer.get_vocab_size(with_added_tokens=True)
        _check_template(spec.get("post_processor"), size)
        for kind, is_pair in (("single", False), ("pair", True)):
            added = tokenizer.post_processor.num_special_tokens_to_add(is_pair) if tokenizer.post_processor else 0
            if added >= max_length:
                raise ValueError(f"post_processor.{kind}: its special tokens take {added} of the {max_length} "
                                 "positions (max_length), leaving none for the text")
    try:
        tokenizer.encode("probe", add_special_tokens=special)
        if rules["pair_encoding"] == "joint":
            tokenizer.encode("probe", "probe", add_special_tokens=special)
    except BaseException as e:
        raise ValueError(f"it cannot encode a text ({_tokenizer_error(e)})") from None


def _tokenizer_error(error: BaseException) -> str:
    """What the tokenizers library said, in one line: it raises bare Exceptions, and pyo3's PanicException for a Rust
    panic, which is a BaseException; an interrupt is raised again as it is."""
    if isinstance(error, (KeyboardInterrupt, SystemExit)):
        raise error
    return _first_line(error)


def _check_template(processor, size: int) -> None:
    """A TemplateProcessing post-processor's special tokens each have ids in the vocabulary (the probe in
    `_check_tokenizer` would meet a missing one as a Rust panic), and it holds each sequence once (the Rust library
    repeats a text named twice, past any truncation, and panics on B in a single text's template);
    export/core/src/tokenizer.js: checkTemplate says the same words."""
    if not (isinstance(processor, dict) and processor.get("type") == "TemplateProcessing"):
        return
    specials = processor.get("special_tokens") or {}
    for kind in ("single", "pair"):
        for item in processor.get(kind) or []:
            name = item.get("SpecialToken", {}).get("id") if isinstance(item, dict) else None
            if name is None:
                continue
            ids = specials.get(name, {}).get("ids") if isinstance(specials.get(name), dict) else None
            if not (isinstance(ids, list) and all(isinstance(i, int) and 0 <= i < size for i in ids)):
                raise ValueError(f"post_processor: special token {json.dumps(name, ensure_ascii=False)[:60]} has no "
                                 "ids in the vocabulary")
        sequences = [item.get("Sequence", {}).get("id") for item in processor.get(kind) or [] if isinstance(item, dict)]
        if sequences.count("A") != 1 or sequences.count("B") != (kind == "pair"):
            second = "B once" if kind == "pair" else "no B"
            raise ValueError(f"post_processor.{kind} must hold sequence A once and {second}")


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:200] if text else type(error).__name__


def _check_checksum(model_bytes: bytes, model_file: Path, manifest: dict) -> None:
    digest = hashlib.sha256(model_bytes)
    expected = manifest["files"]["model.onnx"]["sha256"]
    if digest.hexdigest() != expected:
        raise BundleError(f"{model_file} does not match its manifest (sha256 {digest.hexdigest()[:12]}… vs "
                          f"{expected[:12]}…): the model was changed or comes from another export")
