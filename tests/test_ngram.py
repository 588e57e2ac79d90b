"""The n-gram (fastText-style) student: its tokenizer rules against the shared golden file, the hash across
processes, the student's ONNX export against PyTorch, the bundle in both runtimes, and a tiny distillation."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kdedge_runtime.ngram import NgramRulesError, NgramTokenizer, check_rules, fnv1a32, words_of

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


@pytest.mark.parametrize("change, words", [
    ({"hash": "murmur3"}, "'tokenizer.ngram.hash' must be \"fnv1a-32\""),
    ({"stopwords": ["the"]}, "has rule \"stopwords\", which this runtime does not implement"),
    ({"buckets": 0}, "'tokenizer.ngram.buckets' must be an integer from 1"),
    ({"char_ngrams": [3, 3]}, "'tokenizer.ngram.char_ngrams' must be a list of distinct integers"),
    ({"split": None}, "'tokenizer.ngram.split' is missing"),
])
def test_rules_a_runtime_does_not_implement_are_refused(change, words):
    rules = {k: v for k, v in {**RULES, **change}.items() if v is not None}
    with pytest.raises(NgramRulesError) as error:
        check_rules(rules, "m.json")
    assert str(error.value).startswith("m.json: field ") and words in str(error.value)
    assert "\n" not in str(error.value)
