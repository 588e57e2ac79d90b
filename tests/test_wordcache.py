"""kdedge_runtime.wordcache: the short path gives the tokenizer's own ids, or steps aside."""

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kdedge_runtime.wordcache import WordCache
from tokenizers import Tokenizer, models, pre_tokenizers

MINILM = Path(__file__).resolve().parents[1].parent / "shared" / "hf-hub" / \
    "models--sentence-transformers--all-MiniLM-L6-v2" / "snapshots"
PRINTABLE = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=300)
WORDY = st.lists(st.sampled_from(["the", "film", "un", "##believable", "[MASK]", "[mask]", "[cls]", "<s>", "''",
                                  "don't", "x" * 101, "Café", "A", "-", "...", "  ", "wordpiece", "zzqx"]),
                 max_size=60).map(" ".join)


def _tokenizers(tmp_path_factory, glue_dir) -> dict[str, Tokenizer]:
    from kdedge.config import DataOptions
    from kdedge.data import load_task_data
    from tests.conftest import build_tiny_bert, build_tiny_mpnet

    texts = load_task_data(DataOptions(task="sst2", data_dir=str(glue_dir), max_train_samples=2000)).train.text
    root = tmp_path_factory.mktemp("wordcache")
    found = {"tiny-bert": build_tiny_bert(root / "bert", texts, 2, label_names=["n", "p"]) / "tokenizer.json",
             "tiny-mpnet (RoBERTa's post-processor)": build_tiny_mpnet(root / "mpnet", texts) / "tokenizer.json"}
    found.update({"all-MiniLM-L6-v2": f for f in MINILM.glob("*/tokenizer.json")})
    return {name: Tokenizer.from_file(str(path)) for name, path in found.items()}


@pytest.fixture(scope="module")
def paths(tmp_path_factory, glue_dir):
    """(tokenizer, its short path) per tokenizer make, each truncating at 32 with special tokens or without."""
    out = []
    for name, tokenizer in _tokenizers(tmp_path_factory, glue_dir).items():
        for special in (True, False):
            tokenizer = Tokenizer.from_str(tokenizer.to_str())
            tokenizer.no_padding()
            tokenizer.enable_truncation(32, strategy="longest_first")
            words = WordCache.of(tokenizer, special, 32)
            assert words is not None, name
            out.append((name, special, tokenizer, words))
    return out


def _agree(paths, text):
    for name, special, tokenizer, words in paths:
        ids = words.ids(text)
        if ids is not None:
            assert ids == tokenizer.encode(text, add_special_tokens=special).ids, (name, special, text)


def test_the_same_ids_on_every_sst2_dev_sentence(paths, glue_dir):
    lines = (glue_dir / "SST-2" / "dev.tsv").read_text().splitlines()[1:]
    texts = [line.split("\t")[0] for line in lines]
    taken = sum(paths[0][3].ids(t) is not None for t in texts)
    assert taken > 0.95 * len(texts)  # the point of it: nearly every sentence takes the short path
    for text in texts + [t.upper() for t in texts[:100]]:
        _agree(paths, text)


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(PRINTABLE, WORDY))
def test_the_same_ids_on_generated_text(paths, text):
    _agree(paths, text)


def test_steps_aside_where_it_would_differ(paths):
    words = paths[0][3]
    for text in ("naïve café", "tab\there", "line\nbreak", "nul\x00", "del\x7f", "a [MASK] b", "a [mask] b"):
        assert words.ids(text) is None, text
    assert words.ids("a plain sentence .") is not None


def test_other_pipelines_keep_the_tokenizer():
    whitespace = Tokenizer(models.WordLevel({"[UNK]": 0, "a": 1}, unk_token="[UNK]"))
    whitespace.pre_tokenizer = pre_tokenizers.Whitespace()
    assert WordCache.of(whitespace, True, 32) is None
