"""The n-gram (fastText-style) student: its tokenizer rules against the shared golden file, the hash across
processes, the student's ONNX export against PyTorch, the bundle in both runtimes, and a tiny distillation."""

import dataclasses
import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kdedge_runtime import ngram, ngram_model
from kdedge.ngram_scopes import SCOPES
from kdedge_runtime.ngram import (
    NgramRulesError,
    NgramTokenizer,
    check_rules,
    fnv1a32,
    words_of,
)

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = json.loads((ROOT / "export" / "schema" / "ngram-golden.json").read_text(encoding="utf-8"))
RULES = GOLDEN["tokenizers"][0]["rules"]


def test_fnv1a_gives_the_published_vectors():
    assert fnv1a32("") == 0x811C9DC5
    assert fnv1a32("a") == 0xE40C292C
    assert fnv1a32("foobar") == 0xBF9CF968
    for text, value in GOLDEN["fnv1a32"]:
        assert fnv1a32(text) == value


@pytest.mark.parametrize("spec", GOLDEN["tokenizers"], ids=lambda s: s["name"])
def test_golden_words_and_ids(spec):
    tokenizer = NgramTokenizer(spec["words"], check_rules(spec["rules"], "golden"), spec["max_length"])
    assert tokenizer.vocab_size == spec["vocab_size"]
    for case in spec["cases"]:
        assert words_of(case["text"], spec["max_length"]) == case["words"], case["text"][:60]
        assert tokenizer.ids(case["text"]) == case["ids"], case["text"][:60]
        assert all(0 < i < spec["vocab_size"] for i in case["ids"])


def test_the_split_and_normalisation_rules_by_hand():
    assert words_of("Don't STOP_me, 3.14!") == ["don", "'", "t", "stop", "_", "me", ",", "3", ".", "14", "!"]
    assert words_of("ﬁne cafe\u0301 Ｆｕｌｌ") == ["fine", "café", "full"]  # NFKC: ligature, composition, width
    assert words_of("a\u200bb\u00a0c\td") == ["a", "b", "c", "d"]  # format and space characters separate
    assert words_of("bad \ud800") == ["bad", "\ufffd"]  # a lone surrogate is U+FFFD, a symbol
    assert words_of("x " * 50, 3) == ["x", "x", "x"]
    tokenizer = NgramTokenizer(["a", "fine"], RULES)
    bigram = tokenizer.bucket_offset + fnv1a32("a fine") % RULES["buckets"]
    assert tokenizer.ids("A fine") == [1, 2, bigram]
    assert tokenizer.ids("") == [] and tokenizer.ids("unknown") == []


def test_a_scope_marks_the_words_a_cue_opens_until_an_end_or_its_width():
    scope = {"cues": ["not", "t"], "ends": [".", "but"], "words": 2, "prefix": "not_"}
    tokenizer = NgramTokenizer(["good"], {**RULES, "word_ngrams": 1, "scopes": [scope]})
    marked = lambda *words: [tokenizer.hashed("not_" + w) for w in words]  # noqa: E731
    assert tokenizer.ids("good") == [1]
    assert tokenizer.ids("not good") == [1, *marked("good")]
    assert tokenizer.ids("not very good at all") == [1, *marked("very", "good")]  # two words, then closed
    assert tokenizer.ids("not very . good") == [1, *marked("very")]  # an end closes it
    assert tokenizer.ids("not but good") == [1]
    assert tokenizer.ids("not very not good") == [1, *marked("very", "good")]  # a cue opens it again, unmarked
    assert tokenizer.ids("doesn't work") == marked("work")  # "n't" is "n", "'", "t" by the split rule
    assert tokenizer.ids("NOT GOOD") == [1, *marked("good")]  # cues are read after normalisation
    tokenizer.max_words = 1
    assert tokenizer.ids("not good") == []  # only the words kept are read


def test_the_hash_is_the_same_in_another_process_and_hash_seed():
    texts = ["a fine", "真的 很好", "🎬 film", "cafe\u0301"]
    tokenizer = NgramTokenizer(["film"], {**RULES, "char_ngrams": [2, 3]})
    here = [tokenizer.ids(t) for t in texts]
    code = ("import json, sys; from kdedge_runtime.ngram import NgramTokenizer; "
            "t = NgramTokenizer(['film'], json.loads(sys.argv[1])); "
            "print(json.dumps([t.ids(x) for x in json.loads(sys.argv[2])]))")
    for seed in ("0", "12345"):
        out = subprocess.run([sys.executable, "-c", code, json.dumps(tokenizer.rules), json.dumps(texts)],
                             capture_output=True, text=True, check=True, env={"PYTHONHASHSEED": seed,
                                                                              "PATH": "/usr/bin:/bin"})
        assert json.loads(out.stdout) == here


# ------------------------------------------------------------------------------- the compiled ASCII path (_ngramc.c)

def test_an_install_with_a_c_compiler_built_the_compiled_path():
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) is None:
        pytest.skip(f"no C compiler ({compiler}) here: the runtime installs without its compiled path")
    assert ngram.AsciiIds is not None, "pip install -e . should have built kdedge_runtime._ngramc (_ngramc.c)"


def python_only(tokenizer: NgramTokenizer) -> NgramTokenizer:
    """The same tokenizer with the compiled path turned off: the written rules in Python."""
    plain = NgramTokenizer(tokenizer.words, tokenizer.rules, tokenizer.max_words)
    plain._ascii = None
    return plain


@pytest.mark.parametrize("spec", GOLDEN["tokenizers"], ids=lambda s: s["name"])
def test_golden_ids_in_python_alone(spec):
    tokenizer = python_only(NgramTokenizer(spec["words"], check_rules(spec["rules"], "golden"), spec["max_length"]))
    for case in spec["cases"]:
        assert tokenizer.ids(case["text"]) == case["ids"], case["text"][:60]


ASCII = st.text(st.characters(max_codepoint=127), max_size=80)
WORDY = st.lists(st.sampled_from(["a", "Film", "film", "FILM", "x1", "it's", "--", "!", " ", "\t", "\x7f", "\x00",
                                  "not", "No", "don't", "é", "z" * 70]), max_size=30).map("".join)


@settings(max_examples=300, deadline=None)
@given(data=st.data(), text=st.one_of(ASCII, WORDY))
def test_the_compiled_path_gives_the_python_rules_ids(data, text):
    if ngram.AsciiIds is None:
        pytest.skip("installed without the compiled path")
    words = data.draw(st.lists(st.sampled_from(["a", "film", "x1", "it", "'", "s", "-", "!", "é", "z" * 40]),
                               max_size=8), label="words")  # repeats too: the last of equal words keeps its id
    vocabulary = ["a", "film", "it", "'", "s", "!", "é", "no", "not", "t"]
    scope = st.fixed_dictionaries({  # cues and ends drawn apart (disjoint), non-ASCII ones too
        "cues": st.lists(st.sampled_from(vocabulary[:5] + ["ничего", "z" * 70, "z" * 71]), min_size=1, max_size=3,
                         unique=True),
        "ends": st.lists(st.sampled_from(vocabulary[5:]), max_size=3, unique=True),
        "words": st.integers(1, 4), "prefix": st.sampled_from(["not_", "¬", "but "])})
    rules = {**RULES, "word_ngrams": data.draw(st.integers(1, 3), label="word_ngrams"),
             "char_ngrams": data.draw(st.lists(st.integers(1, 7), unique=True, max_size=3), label="char_ngrams"),
             "buckets": data.draw(st.sampled_from([1, 7, 2**31 - 1]), label="buckets"),
             "scopes": data.draw(st.lists(scope, max_size=2, unique_by=lambda s: s["prefix"]), label="scopes")}
    tokenizer = NgramTokenizer(words, rules, data.draw(st.one_of(st.none(), st.integers(0, 6)), label="max_words"))
    expected = python_only(tokenizer).ids(text)
    assert tokenizer.ids(text) == expected
    assert tokenizer.row(text).tolist() == [expected]


def test_the_compiled_path_reads_over_long_text_and_leaves_other_text_to_python():
    if ngram.AsciiIds is None:
        pytest.skip("installed without the compiled path")
    # words ASCII text cannot match (one not even valid UTF-8, as a JSON file can spell it) keep their ids
    tokenizer = NgramTokenizer(["\ud800", "a", "é", "b"], {**RULES, "char_ngrams": [3]}, None)
    assert tokenizer.ids("b a") == [4, 2, tokenizer.hashed("b a")]
    long_text = "A b! " * 5000  # past the compiled path's stack buffers
    assert tokenizer.ids(long_text) == python_only(tokenizer).ids(long_text)
    tokenizer.max_words = 3
    assert tokenizer.ids(long_text) == python_only(tokenizer).ids(long_text)
    assert tokenizer.ids("ÅNGSTRÖM a") == python_only(tokenizer).ids("ÅNGSTRÖM a")  # not ASCII: the Python rules


def test_the_compiled_path_classifies_and_lowercases_every_ascii_character_as_python_does():
    if ngram.AsciiIds is None:
        pytest.skip("installed without the compiled path")
    every = [chr(c) for c in range(128)]
    text = "".join(a + b + " " for a in every for b in every)  # each character beside each other one
    tokenizer = NgramTokenizer([c.lower() for c in every if c.isalnum()], {**RULES, "char_ngrams": [1, 2]})
    assert tokenizer.ids(text) == python_only(tokenizer).ids(text)


@pytest.mark.parametrize("change, words", [
    ({"hash": "murmur3"}, "'tokenizer.ngram.hash' must be \"fnv1a-32\""),
    ({"stopwords": ["the"]}, "has rule \"stopwords\", which this runtime does not implement"),
    ({"buckets": 0}, "'tokenizer.ngram.buckets' must be an integer from 1"),
    ({"char_ngrams": [3, 3]}, "'tokenizer.ngram.char_ngrams' must be a list of distinct integers"),
    ({"split": None}, "'tokenizer.ngram.split' is missing"),
    ({"scopes": {"cues": ["not"]}}, "'tokenizer.ngram.scopes' must be a list of at most 8 scopes"),
    ({"scopes": [{"cues": ["not"], "ends": [], "words": 3, "prefix": "n_", "until": "."}]},
     "'tokenizer.ngram.scopes[0]' has field \"until\", which this runtime does not implement"),
    ({"scopes": [{"cues": ["not"], "ends": [], "words": 3}]}, "'tokenizer.ngram.scopes[0].prefix' is missing"),
    ({"scopes": [{"cues": ["n't"], "ends": [], "words": 3, "prefix": "n_"}]},
     "'tokenizer.ngram.scopes[0].cues' must be a list of distinct words, each one lowercase word by the split rule"),
    ({"scopes": [{"cues": ["Not"], "ends": [], "words": 3, "prefix": "n_"}]}, "'tokenizer.ngram.scopes[0].cues' must"),
    ({"scopes": [{"cues": [], "ends": [], "words": 3, "prefix": "n_"}]}, "(at least one)"),
    ({"scopes": [{"cues": ["not"], "ends": ["not"], "words": 3, "prefix": "n_"}]},
     "'tokenizer.ngram.scopes[0]' has \"not\" both as a cue and as an end"),
    ({"scopes": [{"cues": ["not"], "ends": [], "words": 0, "prefix": "n_"}]},
     "'tokenizer.ngram.scopes[0].words' must be an integer from 1 to 64"),
    ({"scopes": [{"cues": ["not"], "ends": [], "words": 3, "prefix": ""}]},
     "'tokenizer.ngram.scopes[0].prefix' must be a non-empty string"),
    ({"scopes": [{"cues": ["not"], "ends": [], "words": 3, "prefix": "n_"},
                 {"cues": ["no"], "ends": [], "words": 3, "prefix": "n_"}]},
     "'tokenizer.ngram.scopes[1].prefix' \"n_\" is another scope's prefix too"),
])
def test_rules_a_runtime_does_not_implement_are_refused(change, words):
    rules = {k: v for k, v in {**RULES, **change}.items() if v is not None}
    with pytest.raises(NgramRulesError) as error:
        check_rules(rules, "m.json")
    assert str(error.value).startswith("m.json: field ") and words in str(error.value)
    assert "\n" not in str(error.value)


# ------------------------------------------------------------------------------------------- student and bundles

@pytest.fixture(scope="module")
def ngram_student(tmp_path_factory, tiny_teacher, glue_dir):
    """A small n-gram student distilled from the tiny teacher's soft labels (alpha 0) on 400 SST-2 rows, with its
    negation scopes marked (rule 5), so that both runtimes read scopes from the bundle."""
    from tests.conftest import _distil

    return _distil(tmp_path_factory, tiny_teacher, glue_dir, "ngram", student="ngram", ngram_dim=16, ngram_buckets=500,
                   ngram_scopes="negation", alpha=0.0, epochs=4, log_steps=5)


@pytest.fixture(scope="module")
def ngram_bundles(ngram_student, glue_dir, tmp_path_factory):
    from tests.conftest import export_tiny

    root = tmp_path_factory.mktemp("ngram-bundles")
    return {q: export_tiny(ngram_student, glue_dir, root / q, quantize=q) for q in ("none", "dynamic")}


def test_one_text_takes_the_short_path_to_the_same_answer(ngram_bundles):
    from kdedge_runtime import Classifier
    from tests.test_runtime import ONE_TEXT_CASES, assert_one_text_path_is_the_batch_path

    for bundle in ngram_bundles.values():
        assert_one_text_path_is_the_batch_path(Classifier(bundle), ONE_TEXT_CASES)


needs_compiled_model = pytest.mark.skipif(ngram_model.Model is None, reason="installed without a C compiler")


@needs_compiled_model
def test_the_runtime_runs_the_bundles_compiled_with_onnx_runtimes_answers(ngram_bundles):
    """kdedge_runtime/ngram_model.py: the model without ONNX Runtime's cost per run (tests/test_ngram_model.py holds
    the arithmetic to ONNX Runtime's on graphs of random shapes)."""
    import numpy as np
    from kdedge_runtime import Classifier, Prediction

    from tests.test_runtime import EDGE_CASES

    texts = ["a gorgeous , witty film", "not a witty film , and it isn't good", *EDGE_CASES, "bad \ud800 text"]
    for bundle in ngram_bundles.values():
        compiled, plain = Classifier(bundle), Classifier(bundle, compiled=False)
        assert compiled.compiled and not plain.compiled
        for batch_size in (1, 4):
            np.testing.assert_allclose(compiled.logits(texts, batch_size=batch_size),
                                       plain.logits(texts, batch_size=batch_size), rtol=1e-5, atol=1e-6)
        assert [p.label for p in compiled.predict(texts)] == [p.label for p in plain.predict(texts)]
        assert compiled._one is not None  # one ASCII text: ids, model and decoding in one C call
        for text in texts:  # one text: the compiled path's decoding in C (ASCII text with ids) against Python's
            fast, slow = compiled.predict(text), plain.predict(text)
            assert type(fast) is Prediction and fast.label == slow.label
            np.testing.assert_allclose([fast.score, *fast.logits], [slow.score, *slow.logits], rtol=1e-5, atol=1e-6)


@needs_compiled_model
def test_a_failure_in_the_one_text_path_is_left_to_the_path_that_names_it(ngram_bundles):
    import numpy as np
    from kdedge_runtime import Classifier

    classifier = Classifier(ngram_bundles["dynamic"])
    expected = classifier.predict("a gorgeous , witty film")

    def failing(text):
        raise MemoryError("no memory for this one")

    classifier._one = failing
    got = classifier.predict("a gorgeous , witty film")
    assert got.label == expected.label
    np.testing.assert_allclose([got.score, *got.logits], [expected.score, *expected.logits], rtol=1e-6)


@needs_compiled_model
def test_a_compiled_model_that_disagrees_with_onnx_runtime_at_load_is_not_used(ngram_bundles, monkeypatch):
    import onnx
    from kdedge_runtime import Classifier

    real = ngram_model.compile_graph

    def shifted(model_bytes):  # the bundle's model with its last bias moved by one
        table, scale, layers = ngram_model._match(onnx.load_from_string(model_bytes).graph)
        weight, bias = layers[-1]
        return ngram_model.Model(table, scale, [*layers[:-1], (weight, bias + 1.0)])

    assert Classifier(ngram_bundles["dynamic"]).compiled
    monkeypatch.setattr(ngram_model, "compile_graph", shifted)
    assert not Classifier(ngram_bundles["dynamic"]).compiled
    monkeypatch.setattr(ngram_model, "compile_graph", real)


@needs_compiled_model
def test_the_device_bench_says_which_engine_ran_the_model(ngram_bundles, glue_dir, tmp_path):
    from tests.test_device_bench import FAST, _device_bench, load_report

    result = _device_bench(tmp_path, ngram_bundles["dynamic"], "--data", glue_dir / "SST-2" / "dev.tsv",
                           "--max-examples", "30", "--out", tmp_path / "device.json", *FAST)
    assert result.returncode == 0, result.stderr
    (row,) = load_report(tmp_path / "device.json")["bundles"]
    assert row["model_engine"] == "compiled" and row["predict"]["p50_ms"] > 0


@pytest.mark.parametrize("compiled", [True, False])
def test_an_id_past_the_table_is_one_error_with_or_without_the_compiled_model(compiled, ngram_bundles):
    import numpy as np
    from kdedge_runtime import Classifier
    from kdedge_runtime.manifest import BundleError

    classifier = Classifier(ngram_bundles["dynamic"], compiled=compiled)
    with pytest.raises(BundleError, match="model.onnx failed on this input"):
        classifier.run_batch({"input_ids": np.asarray([[1, 10**6]], dtype=np.int64)})


def test_distillation_lowers_the_soft_loss_and_writes_a_student_that_reloads(ngram_student):
    from kdedge.models.students import load_student

    log = [json.loads(line) for line in (ngram_student / "train_log.jsonl").read_text().splitlines()]
    losses = [row["loss"] for row in log if "loss" in row]
    assert len(losses) >= 4 and losses[-1] < 0.5 * losses[0]
    student = load_student(ngram_student)
    meta = json.loads((ngram_student / "student.json").read_text())
    assert meta["architecture"] == "ngram" and meta["ngram"]["buckets"] == 500
    words = json.loads((ngram_student / "ngram.json").read_text())["words"]
    assert len(student.tokenizer) == 1 + len(words) + 500 == student.model.embedding.num_embeddings


def test_word_dropout_averages_a_random_subset_in_training_and_every_id_in_eval():
    import itertools

    import torch

    from kdedge.models.ngram import NgramConfig, NgramStudent

    torch.manual_seed(0)
    model = NgramStudent(NgramConfig(vocab_size=10, num_labels=2, embedding_dim=4, dropout=0.0, word_dropout=0.5))
    ids, rows = torch.tensor([[3, 5, 7, 9, 0]]), model.embedding.weight.detach()[[3, 5, 7, 9]]
    means = {kept: (rows[list(kept)].mean(0) if kept else torch.zeros(4))
             for n in range(5) for kept in itertools.combinations(range(4), n)}

    def subset_of(vector):
        return next(kept for kept, mean in means.items() if torch.allclose(vector, mean, atol=1e-6))

    model.eval()
    with torch.no_grad():
        assert subset_of(model.encode(ids, None)[0]) == (0, 1, 2, 3)
        assert subset_of(model.encode(ids, torch.tensor([[1, 1, 1, 1, 0]]))[0]) == (0, 1, 2, 3)
        model.train()
        seen = [subset_of(model.encode(ids, mask)[0]) for _ in range(100) for mask in (None, ids > 0)]
    kept = sum(map(len, seen)) / (4 * len(seen))
    assert len(set(seen)) > 5 and 0.4 < kept < 0.6  # about half of the ids, different ones each time


def test_the_fp32_bundle_gives_pytorchs_logits_and_int8_is_close(ngram_student, ngram_bundles, glue_dir):
    import numpy as np
    from kdedge_runtime import Classifier

    from kdedge.config import DataOptions
    from kdedge.data import load_task_data
    from tests.test_runtime import EDGE_CASES, torch_logits

    texts = list(load_task_data(DataOptions(task="sst2", data_dir=str(glue_dir), max_eval_samples=200)).dev.text)
    texts += EDGE_CASES
    reference = torch_logits(ngram_student, texts)
    fp32 = Classifier(ngram_bundles["none"]).logits(texts, batch_size=13)
    assert np.abs(fp32 - reference).max() < 1e-5
    int8 = Classifier(ngram_bundles["dynamic"]).logits(texts, batch_size=1)
    assert np.abs(int8 - reference).max() < 0.05 * np.abs(reference).max()
    assert (int8.argmax(-1) == reference.argmax(-1)).mean() > 0.95


def test_the_bundle_manifest_carries_the_rules_and_int8_stores_the_table_per_row(ngram_bundles):
    import onnx

    for bundle in ngram_bundles.values():
        manifest = json.loads((bundle / "manifest.json").read_text())
        assert manifest["architecture"] == "ngram" and manifest["tokenizer"]["file"] == "ngram.json"
        assert manifest["tokenizer"]["ngram"] == {**RULES, "buckets": 500, "scopes": [SCOPES["negation"]]}
        assert manifest["tokenizer"]["add_special_tokens"] is False and manifest["tokenizer"]["pad_token_id"] == 0
    int8 = onnx.load(str(ngram_bundles["dynamic"] / "model.onnx"))
    kinds = {i.name: i.data_type for i in int8.graph.initializer}
    assert any(name.endswith("_int8") and kind == onnx.TensorProto.INT8 for name, kind in kinds.items())
    assert json.loads((ngram_bundles["dynamic"] / "manifest.json").read_text())["quantization"]["embeddings"]["tables"] == 1


def test_the_graph_reads_ids_alone_and_int8_leaves_the_small_head_float(ngram_bundles):
    """What an app's call costs: one input to build and feed, and no on-the-fly quantization of a 16-wide layer."""
    import onnx

    for bundle in ngram_bundles.values():
        manifest = json.loads((bundle / "manifest.json").read_text())
        graph = onnx.load(str(bundle / "model.onnx")).graph
        assert [i["name"] for i in manifest["inputs"]] == [i.name for i in graph.input] == ["input_ids"]
    ops = {n.op_type for n in onnx.load(str(ngram_bundles["dynamic"] / "model.onnx")).graph.node}
    assert "Gemm" in ops and not ops & {"DynamicQuantizeLinear", "MatMulInteger"}
    quantization = json.loads((ngram_bundles["dynamic"] / "manifest.json").read_text())["quantization"]
    assert quantization["weights"] == "embedding table int8 per row, the head float" and quantization["ops"] == {}


def test_a_bundle_that_feeds_masks_as_older_exports_did_gives_the_same_logits(ngram_student, ngram_bundles,
                                                                              glue_dir, tmp_path, monkeypatch):
    import numpy as np
    from kdedge_runtime import Classifier

    from kdedge.onnx import export as exporters
    from tests.conftest import export_tiny
    from tests.test_runtime import EDGE_CASES

    monkeypatch.setitem(exporters.EXPORTERS, "ngram", exporters.export_bilstm)  # ids and masks, as before
    older = export_tiny(ngram_student, glue_dir, tmp_path / "older")
    assert [i["name"] for i in json.loads((older / "manifest.json").read_text())["inputs"]] == ["input_ids",
                                                                                                  "attention_mask"]
    texts = ["a fine film", "dull , dull , dull", *EDGE_CASES]
    for batch_size in (1, 5):
        assert np.abs(Classifier(older).logits(texts, batch_size=batch_size)
                      - Classifier(ngram_bundles["none"]).logits(texts, batch_size=batch_size)).max() < 1e-6


@pytest.mark.parametrize("q", ["none", "dynamic"])
def test_node_gives_pythons_logits(q, ngram_bundles, glue_dir):
    import numpy as np
    from kdedge_runtime import Classifier

    from tests.test_runtime import EDGE_CASES, NODE_BATCH, node_logits

    texts = ["a gorgeous , witty film", "dull and lifeless", "not a witty film , and it isn't good", *EDGE_CASES,
             "bad \ud800 text", "👩\u200d💻 ﬁne"]
    python = Classifier(ngram_bundles[q]).logits(texts, batch_size=NODE_BATCH)
    node = node_logits(ngram_bundles[q], texts)
    assert "error" not in node, node
    np.testing.assert_allclose(np.asarray(node["logits"]), python, atol=1e-5)


def test_kdedge_predict_reads_the_bundle(ngram_bundles):
    from click.testing import CliRunner
    from kdedge_runtime import Classifier

    from kdedge.cli import main

    result = CliRunner().invoke(main, ["predict", "--bundle", str(ngram_bundles["dynamic"]), "a gorgeous film", ""])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    expected = Classifier(ngram_bundles["dynamic"]).predict(["a gorgeous film", ""])
    assert [r["label"] for r in rows] == [p.label for p in expected]


@pytest.mark.parametrize("change, words", [
    ({"hash": "xxhash"}, "field 'tokenizer.ngram.hash' must be \"fnv1a-32\""),
    ({"lowercase": False}, "field 'tokenizer.ngram' has rule \"lowercase\""),
    ({"buckets": "many"}, "field 'tokenizer.ngram.buckets' must be an integer"),
    ({"scopes": [{"cues": ["n't"], "ends": [], "words": 4, "prefix": "not_"}]},
     "field 'tokenizer.ngram.scopes[0].cues' must be a list of distinct words"),
])
def test_a_bundle_with_unknown_or_malformed_rules_is_refused_by_both_runtimes(change, words, ngram_bundles, tmp_path):
    import shutil

    from kdedge_runtime import BundleError, Classifier

    from tests.test_runtime import node_logits

    bundle = tmp_path / "b"
    shutil.copytree(ngram_bundles["none"], bundle)
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["tokenizer"]["ngram"].update(change)
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError) as error:
        Classifier(bundle)
    assert words in str(error.value) and "\n" not in str(error.value)
    node = node_logits(bundle, ["a film"])
    assert node.get("error", {}).get("name") == "BundleError" and words in node["error"]["message"]


def test_a_vocabulary_file_that_is_not_one_is_refused(ngram_bundles, tmp_path):
    import shutil

    from kdedge_runtime import BundleError, Classifier

    bundle = tmp_path / "b"
    shutil.copytree(ngram_bundles["none"], bundle)
    (bundle / "ngram.json").write_text(json.dumps({"words": ["film", "film"]}))
    with pytest.raises(BundleError, match="ngram.json is not a valid tokenizer .\"words\" must be a list of distinct"):
        Classifier(bundle)


def test_a_siamese_pair_student_with_two_hidden_layers_and_character_ngrams_exports_exactly(tmp_path_factory,
                                                                                            tiny_pair_teacher, glue_dir):
    import numpy as np
    import onnx
    from kdedge_runtime import Classifier

    from kdedge.config import DataOptions
    from kdedge.data import load_task_data
    from tests.conftest import _distil, export_tiny
    from tests.test_runtime import torch_logits

    student = _distil(tmp_path_factory, tiny_pair_teacher, glue_dir, "ngram-pair", task="stsb", student="ngram",
                      ngram_dim=8, ngram_hidden=8, ngram_hidden_layers=2, ngram_buckets=300, ngram_chars="3-4",
                      ngram_scopes="negation,contrast", max_train_samples=200, max_eval_samples=100, epochs=1)
    bundle = export_tiny(student, glue_dir, tmp_path_factory.mktemp("ngram-pair-bundle") / "b")
    dev = load_task_data(DataOptions(task="stsb", data_dir=str(glue_dir), max_eval_samples=50)).dev
    texts = list(dev.text) + ["", "naïve café", "not a bad film , but not good either"]
    pairs = list(dev.text_pair) + ["something", "", "it isn't dull"]
    classifier = Classifier(bundle)
    rules = classifier.manifest["tokenizer"]["ngram"]
    assert classifier.pair_encoding == "separate" and rules["char_ngrams"] == [3, 4]
    assert rules["scopes"] == [SCOPES["negation"], SCOPES["contrast"]]
    assert classifier.input_names == ["input_ids", "input_ids_b"]
    linear = [n for n in onnx.load(str(bundle / "model.onnx")).graph.node if n.op_type in ("Gemm", "MatMul")]
    assert len(linear) == 3  # two hidden layers and the logits
    assert np.abs(classifier.logits(texts, pairs, batch_size=7) - torch_logits(student, texts, pairs)).max() < 1e-5


def test_word_vectors_start_the_word_rows_on_their_principal_components(tmp_path_factory, tiny_teacher, glue_dir,
                                                                        glove_path):
    import numpy as np

    from kdedge.errors import KdedgeError
    from kdedge.models.students import load_student
    from kdedge.models.word_vectors import load_word_vectors
    from tests.conftest import _distil

    student = _distil(tmp_path_factory, tiny_teacher, glue_dir, "ngram-glove", student="ngram", ngram_dim=8,
                      ngram_buckets=50, word_vectors=str(glove_path), epochs=0, max_train_samples=100)
    words = json.loads((student / "ngram.json").read_text())["words"]
    rows = load_student(student).model.embedding.weight.detach().numpy()[1:1 + len(words)]
    vectors, coverage = load_word_vectors(glove_path, {w: i for i, w in enumerate(words)}, seed=0)
    centred = vectors - vectors.mean(axis=0)
    # a projection of the centred vectors (rows = centred @ V) whose columns carry the 8 largest singular values
    projection = np.linalg.lstsq(centred, rows, rcond=None)[0]
    assert np.abs(centred @ projection - rows).max() < 1e-4
    assert np.allclose(np.linalg.norm(rows, axis=0), np.linalg.svd(centred, compute_uv=False)[:8], rtol=1e-3)
    meta = json.loads((student / "student.json").read_text())["embeddings"]
    assert meta["dimensions"] == vectors.shape[1] and meta["reduced_to"] == 8 and meta["coverage"] == round(coverage, 4)
    with pytest.raises(KdedgeError, match=f"--ngram-dim 500 is more than the {vectors.shape[1]} dimensions"):
        _distil(tmp_path_factory, tiny_teacher, glue_dir, "ngram-glove-wide", student="ngram", ngram_dim=500,
                ngram_buckets=50, word_vectors=str(glove_path), epochs=0, max_train_samples=100)


def test_bad_ngram_options_are_one_clear_error_each():
    from kdedge.config import DistillConfig, build_config
    from kdedge.errors import KdedgeError

    for options, words in (({"ngram_chars": "5-3"}, "--ngram-chars must be MIN-MAX"),
                           ({"ngram_chars": "abc"}, "--ngram-chars must be MIN-MAX"),
                           ({"ngram_buckets": 0}, "--ngram-buckets must be"),
                           ({"ngram_words": 9}, "--ngram-words must be"),
                           ({"ngram_hidden": -1}, "--ngram-hidden must be"),
                           ({"ngram_hidden_layers": 0}, "--ngram-hidden-layers must be"),
                           ({"ngram_dim": 0}, "--ngram-dim must be"),
                           ({"ngram_scopes": "negation,irony"}, "--ngram-scopes must be distinct names from negation, "
                                                                "contrast"),
                           ({"ngram_scopes": "negation,negation"}, "--ngram-scopes must be distinct names")):
        with pytest.raises(KdedgeError, match=words):
            build_config(DistillConfig, None, task="sst2", teacher="t", student="ngram", **options)


def test_the_teacher_reads_no_more_tokens_than_it_can_for_a_student_that_counts_words():
    """--max-length 2048 is 2,048 words for the n-gram student; a BERT-base teacher labelling the same rows reads at
    most its tokenizer's 512 tokens, where a transformer student's --max-length is the teacher's too."""
    from types import SimpleNamespace

    from kdedge.config import DistillConfig, build_config
    from kdedge.distill.run import _teacher_max_length

    bert = SimpleNamespace(model_max_length=512)
    words = build_config(DistillConfig, None, task="sst2", teacher="t", student="ngram", max_length=2048,
                         out="s")
    tokens = build_config(DistillConfig, None, task="sst2", teacher="t", student="tinybert", max_length=256,
                          out="s")
    assert _teacher_max_length(words, bert) == 512
    assert _teacher_max_length(dataclasses.replace(words, max_length=64), bert) == 64
    assert _teacher_max_length(tokens, bert) == 256
    assert _teacher_max_length(words, SimpleNamespace(model_max_length=int(1e30))) == 2048  # a tokenizer with no limit


def test_keep_float_is_refused_for_the_ngram_student(ngram_student, glue_dir, tmp_path):
    """Its int8 quantizes the embedding table alone: there is no MatMul to leave in float."""
    from tests.conftest import export_tiny

    from kdedge.errors import KdedgeError

    with pytest.raises(KdedgeError, match="the n-gram student's int8 leaves its head in float already; drop it"):
        export_tiny(ngram_student, glue_dir, tmp_path / "b", quantize="dynamic", keep_float="auto")
    assert not (tmp_path / "b").exists() and not (tmp_path / "b.partial").exists()
