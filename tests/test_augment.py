import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from kdedge.augment.clean import Cleaner, normalize
from kdedge.augment.rules import RuleAugmentation, heuristic_tag
from kdedge.augment.words import split_words
from kdedge.config import AugmentConfig, build_config
from kdedge.data.loaders import Split
from kdedge.data.transfer import read_shards
from kdedge.errors import KdedgeError


def _cfg(**kw) -> AugmentConfig:
    return build_config(AugmentConfig, None, **{"teacher": "t", "out": "o", **kw})


def _augment(tmp_path, teacher, glue_dir, name="aug", **kw):
    from kdedge.augment.run import augment_transfer_set

    base = dict(task="sst2", data_dir=str(glue_dir), teacher=str(teacher), out=str(tmp_path / name),
                max_train_samples=60, max_eval_samples=100, variants=2, shard_size=20, seed=3)
    base.update(kw)
    return augment_transfer_set(build_config(AugmentConfig, None, **base))


def _rows(folder: Path) -> list[dict]:
    return read_shards(folder).to_pylist()


def test_cleaner_normalises_bounds_and_removes_duplicates_and_dev_leaks():
    cleaner = Cleaner(min_words=2, max_words=8, near_duplicate=0.6, seed=0)
    cleaner.add_held_out(["A dev sentence that must never leak into training"], None)
    assert normalize("  two\u00a0 words\x07 ") == "two words"
    assert cleaner.keep("a  dev sentence that must never leak into training", None, original=True) is None
    assert cleaner.keep("one", None) is None
    assert cleaner.keep("far too many words in this one example for the bound", None) is None
    assert cleaner.keep("the film is good", None, original=True) == ("the film is good", None)
    assert cleaner.keep("The film is good", None) is None  # an exact copy (case-insensitive)
    assert cleaner.keep("the film, is good!", None) is None  # a near copy: same words, other punctuation
    assert cleaner.keep("an entirely different thing", None) is not None
    assert cleaner.keep("the film is good", None, original=True) is not None  # originals are data: kept
    assert dict(cleaner.removed) == {"dev_leak": 1, "too_short": 1, "too_long": 1, "duplicate": 1,
                                     "near_duplicate": 1}


def test_rules_follow_tang_et_al():
    words = "the movie was wonderfully acted and beautifully shot".split()
    train = [" ".join(words), "a film is badly written", "this story was quickly told"]
    rules = RuleAugmentation(_cfg(p_mask=1.0, p_pos=0.0, p_ng=0.0, tagger="none"), train)
    rng = np.random.default_rng(0)
    assert rules._vary(words, [heuristic_tag(w) for w in words], rng) == ["[MASK]"] * len(words)
    rules = RuleAugmentation(_cfg(p_mask=0.0, p_pos=1.0, p_ng=0.0, tagger="none"), train)
    tags = [heuristic_tag(w) for w in words]
    for _ in range(20):
        swapped = rules._vary(words, tags, rng)
        assert [heuristic_tag(w) for w in swapped] == tags  # every word replaced within its tag
        assert all(w in rules.by_tag[t] for w, t in zip(swapped, tags))
    rules = RuleAugmentation(_cfg(p_mask=0.0, p_pos=0.0, p_ng=1.0, tagger="none"), train)
    for _ in range(20):
        gram = rules._vary(words, tags, rng)
        assert 1 <= len(gram) <= 5 and " ".join(gram) in " ".join(words)  # a contiguous n-gram, n in 1..5
    assert "heuristic" in rules.describe()["pos_tagger"]


def test_a_pairs_variant_rewrites_one_side_and_keeps_the_other(glove_path):
    """Both sides rewritten turned most MRPC paraphrases into non-paraphrases; one side at a time, in turn."""
    from kdedge.augment.replace import WordReplacement

    first = ["the company said profits rose sharply .", "shares fell in early trade ."]
    second = ["profits rose sharply , the company said .", "early trade saw shares fall ."]
    chunk = Split(text=first, labels=np.zeros(2), text_pair=second)
    augmenters = {"rules": RuleAugmentation(_cfg(p_mask=1.0, p_pos=0.0, p_ng=0.0, tagger="none", variants=4),
                                            first + second),
                  "replace": WordReplacement(_cfg(word_vectors=str(glove_path), p_replace=1.0, variants=4))}
    for name, augmenter in augmenters.items():
        out = list(augmenter.variants(chunk, np.random.default_rng(0)))
        assert [i for i, _, _ in out] == [0] * 4 + [1] * 4, name
        sides = []
        for i, text, pair in out:
            kept = (text == first[i], pair == second[i])
            assert kept in ((True, False), (False, True)), (name, text, pair)  # exactly one side rewritten
            sides.append(kept.index(False))
        assert sides == [0, 1, 0, 1, 1, 0, 1, 0], name  # the sides in turn, each example starting on another
    single = list(augmenters["rules"].variants(Split(text=first, labels=np.zeros(2)), np.random.default_rng(0)))
    assert all(pair is None and text != first[i] for i, text, pair in single)


def test_tagger_names_what_to_fix_when_the_model_is_missing():
    from kdedge.augment.rules import make_tagger

    with pytest.raises(KdedgeError, match="--tagger no_such_spacy_model"):
        make_tagger("no_such_spacy_model")
    assert "heuristic" in make_tagger("none").name


def test_spacy_tagger_guides_the_swaps():
    """Runs where spaCy and an English model are installed (KDEDGE_SPACY_MODEL: a package name or folder)."""
    import os

    spacy = pytest.importorskip("spacy")
    model = os.environ.get("KDEDGE_SPACY_MODEL") or next(
        (m for m in ("en_core_web_md", "en_core_web_sm", "en_core_web_lg") if m in spacy.util.get_installed_models()),
        None)
    if model is None:
        pytest.skip("no spaCy English model installed (set KDEDGE_SPACY_MODEL to one)")
    train = ["the movie was wonderfully acted .", "a film is badly written", "this story was quickly told"]
    rules = RuleAugmentation(_cfg(p_mask=0.0, p_pos=1.0, p_ng=0.0, tagger=model), train)
    assert rules.describe()["pos_tagger"].startswith("spaCy en_core_web")
    words = split_words(train[0])
    [tags] = rules.tagger.tag([words])
    assert tags[0] == "DET" and tags[1] == "NOUN" and tags[-1] == "PUNCT"
    swapped = rules._vary(words, tags, np.random.default_rng(0))
    assert swapped[-1] == "." and all(w in rules.by_tag[t] for w, t in zip(swapped, tags) if t != "PUNCT")


def test_glove_replacements_come_from_the_candidate_set(glove_path):
    from kdedge.augment.replace import WordReplacement

    replace = WordReplacement(_cfg(word_vectors=str(glove_path), p_replace=0.5, top_k=5, variants=6))
    texts = ["a gorgeous , witty , seductive movie", "the plot is paper-thin and the acting wooden"]
    chunk = Split(text=texts, labels=np.zeros(2))
    candidates = replace.vectors.candidates({w for t in texts for w in split_words(t)})
    assert candidates["gorgeous"] and len(candidates["gorgeous"]) == 5 and "gorgeous" not in candidates["gorgeous"]
    out = list(replace.variants(chunk, np.random.default_rng(1)))
    assert len(out) == 12 and [i for i, _, _ in out] == [0] * 6 + [1] * 6
    changed = 0
    for i, text, pair in out:
        assert pair is None
        original, variant = split_words(texts[i]), text.split(" ")
        assert len(original) == len(variant)
        for a, b in zip(original, variant):
            if a != b:
                changed += 1
                assert b in candidates[a.lower()]
    assert changed > 5
    again = list(WordReplacement(_cfg(word_vectors=str(glove_path), p_replace=0.5, top_k=5, variants=6))
                 .variants(chunk, np.random.default_rng(1)))
    assert again == out  # same seed, same variants


def test_masked_lm_candidates_are_whole_single_piece_words(tmp_path):
    import torch
    from transformers import BertConfig, BertForMaskedLM, BertTokenizerFast

    from kdedge.augment.replace import MaskedLMCandidates

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "film", "is", "good", "bad", "great", "##s", ",",
             "movie", "plot"]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab))
    BertTokenizerFast.from_pretrained(str(tmp_path)).save_pretrained(tmp_path)
    torch.manual_seed(0)
    BertForMaskedLM(BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                               intermediate_size=32)).save_pretrained(tmp_path)
    mlm = MaskedLMCandidates(str(tmp_path), top_k=3)
    out = mlm.candidates([["the", "films", "is", "good", ","]])[0]
    assert set(out) == {0, 2, 3}  # "films" is two pieces and "," is not a word: no candidates
    for position, words in out.items():
        assert len(words) == 3 and all(w.isalpha() and not w.startswith("##") for w in words)
        assert ["the", "films", "is", "good"][position] not in words


def test_transfer_set_end_to_end_with_budget_and_dev_leak(tiny_teacher, glue_dir, glove_path, tmp_path):
    out = _augment(tmp_path, tiny_teacher, glue_dir, method="replace,rules", word_vectors=str(glove_path))
    rows = _rows(out)
    m = json.loads((out / "manifest.json").read_text())
    sources = m["metrics"]["rows_by_source"]
    assert sources["original"] == 60 and len(rows) == sum(sources.values()) == m["metrics"]["rows"]
    assert m["metrics"]["candidates_by_method"] == {"replace": 120, "rules": 120}  # N=2 variants of 60 rows
    assert sum(m["metrics"]["removed_by_filter"].values()) == 240 + 60 - len(rows)
    assert m["inputs"]["teacher"]["sha256_weights"] and m["seed"] == 3 and m["metrics"]["examples_per_s"] > 0
    assert set(m["methods"]) == {"replace", "rules"} and m["metrics"]["shards"] == [f"shard-0000{i}.parquet"
                                                                                    for i in range(3)]
    for r in rows:
        assert (r["label"] is None) == (r["source"] != "original") and 0 <= r["parent"] < 60
        assert len(r["logits"]) == 2
    assert not list(out.glob("*.json.tmp")) and not list(out.glob("shard-*.json"))
    budget = _augment(tmp_path, tiny_teacher, glue_dir, name="budget", method="rules", max_examples=50)
    assert len(_rows(budget)) == 50


def test_dev_sentences_planted_in_train_never_reach_the_transfer_set(tiny_teacher, glue_dir, tmp_path):
    from kdedge.config import DataOptions
    from kdedge.data import load_task_data

    dev = load_task_data(DataOptions(task="sst2", data_dir=str(glue_dir), max_eval_samples=100)).dev
    planted = dev.text[5]
    train = tmp_path / "train.tsv"
    names = ("negative", "positive")
    rows = ["sentence\tlabel", f"{planted}\tpositive", "an ordinary training sentence about a film\tnegative",
            "another perfectly fine review of a movie\tpositive"]
    train.write_text("\n".join(rows) + "\n")
    dev_file = tmp_path / "dev.tsv"
    dev_file.write_text("sentence\tlabel\n" + "".join(f"{t}\t{names[l]}\n" for t, l in zip(dev.text, dev.labels)))
    out = _augment(tmp_path, tiny_teacher, glue_dir, task="sst2-custom", data_dir=None, train_file=str(train),
                   dev_file=str(dev_file), text_column="sentence", labels="negative,positive",
                   method="rules", max_train_samples=None, max_eval_samples=None, variants=3)
    texts = [r["text"] for r in _rows(out)]
    assert planted not in texts and "an ordinary training sentence about a film" in texts
    assert json.loads((out / "manifest.json").read_text())["metrics"]["removed_by_filter"]["dev_leak"] == 1


def test_resume_after_a_killed_run_gives_the_same_shards(tiny_teacher, glue_dir, glove_path, tmp_path, monkeypatch):
    import kdedge.augment.run as run_module

    kw = dict(method="replace,rules", word_vectors=str(glove_path))
    whole = _augment(tmp_path, tiny_teacher, glue_dir, name="whole", **kw)
    real_write = run_module.write_shard
    written = []

    def dies_after_two(path, *args):
        if len(written) == 2:
            raise KeyboardInterrupt  # killed while shard 3 was being labelled
        real_write(path, *args)
        written.append(path)

    monkeypatch.setattr(run_module, "write_shard", dies_after_two)
    with pytest.raises(KeyboardInterrupt):
        _augment(tmp_path, tiny_teacher, glue_dir, name="killed", **kw)
    partial = tmp_path / "killed.partial"
    assert sorted(p.name for p in partial.glob("shard-*.parquet")) == ["shard-00000.parquet", "shard-00001.parquet"]
    monkeypatch.setattr(run_module, "write_shard", real_write)
    with pytest.raises(KdedgeError, match="--resume"):
        _augment(tmp_path, tiny_teacher, glue_dir, name="killed", **kw)
    resumed = _augment(tmp_path, tiny_teacher, glue_dir, name="killed", resume=True, **kw)
    for a, b in zip(sorted(whole.glob("shard-*.parquet")), sorted(resumed.glob("shard-*.parquet")), strict=True):
        assert pq.read_table(a).to_pylist() == pq.read_table(b).to_pylist()
    m1, m2 = (json.loads((f / "manifest.json").read_text())["metrics"] for f in (whole, resumed))
    assert m1["rows_by_source"] == m2["rows_by_source"] and m1["removed_by_filter"] == m2["removed_by_filter"]


def _tiny_gpt2(folder: Path, texts: list[str]) -> Path:
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=400, min_frequency=1, special_tokens=["<|endoftext|>"])
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<|endoftext|>", eos_token="<|endoftext|>")
    tok.save_pretrained(folder)
    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_positions=128, n_embd=32, n_layer=1, n_head=2)).save_pretrained(folder)
    return folder


def test_generative_prompts_are_token_prefixes_of_the_training_texts(tmp_path, glue_dir):
    import torch

    from kdedge.augment.generative import GenerativeAugmentation
    from kdedge.config import DataOptions
    from kdedge.data import load_task_data

    data = load_task_data(DataOptions(task="sst2", data_dir=str(glue_dir), max_train_samples=100))
    gpt = _tiny_gpt2(tmp_path / "gpt", data.train.text + ["negative: positive: =>"])
    gen = GenerativeAugmentation(_cfg(generator=str(gpt), generator_epochs=0.0), data.train, data.task,
                                 tmp_path / "work", torch.device("cpu"))
    ids = lambda text: gen.tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    for pair in (None, "and a second sentence"):
        full = ids(gen._training_text("a gorgeous , witty movie", pair, 1))
        prompt = ids(gen._prompt("a gorgeous , witty movie", 1, paired=pair is not None))
        assert full[:len(prompt)] == prompt and len(full) > len(prompt)
    assert ids(gen._prompt("", 0, paired=False))[0] == gen.tokenizer.bos_token_id
    assert not (tmp_path / "work" / "generator").exists()  # an unchanged generator is not copied


def test_generative_counts_determinism_and_pairs(tiny_teacher, tiny_pair_teacher, glue_dir, tmp_path):
    from kdedge.config import DataOptions
    from kdedge.data import load_task_data

    data = load_task_data(DataOptions(task="stsb", data_dir=str(glue_dir), max_train_samples=200))
    gpt = _tiny_gpt2(tmp_path / "gpt", data.train.text + data.train.text_pair + ["negative: positive:"])
    kw = dict(method="generative", generator=str(gpt), generator_epochs=1.0, generator_batch_size=16,
              generated_per_example=1.5, max_new_tokens=12, min_new_tokens=3, near_duplicate=1.0, min_words=0)
    out = _augment(tmp_path, tiny_teacher, glue_dir, name="gen", **kw)
    rows = _rows(out)
    m = json.loads((out / "manifest.json").read_text())
    assert m["metrics"]["candidates_by_method"] == {"generative": 90}  # 1.5 per original, 60 originals
    assert m["methods"]["generative"]["label_conditioned"] and m["methods"]["generative"]["fine_tuning"]["steps"] == 4
    assert (out / "generator" / "fine_tuning.json").is_file()  # the fine-tuned generator is kept: it can sample again
    reuse = _augment(tmp_path, tiny_teacher, glue_dir, name="reuse",
                     **{**kw, "generator": str(out / "generator"), "generator_epochs": 0.0})
    assert json.loads((reuse / "manifest.json").read_text())["methods"]["generative"]["fine_tuning"]["steps"] == 0
    again = _augment(tmp_path, tiny_teacher, glue_dir, name="gen2", **kw)
    assert _rows(again) == rows
    # Pairs: the first sentence is an original one, the second is generated from it.
    pair_out = _augment(tmp_path, tiny_pair_teacher, glue_dir, name="pairs", task="stsb", **kw)
    pair_rows = _rows(pair_out)
    originals = {r["parent"]: r for r in pair_rows if r["source"] == "original"}
    generated = [r for r in pair_rows if r["source"] == "generative"]
    assert generated and all(r["text"] == originals[r["parent"]]["text"] for r in generated if r["parent"] in originals)
    assert all(isinstance(r["label"], float) for r in originals.values()) and len(pair_rows[0]["logits"]) == 1


def test_distill_on_a_transfer_set(tiny_teacher, glue_dir, glove_path, tmp_path):
    from tests.conftest import _distil_at

    out = _augment(tmp_path, tiny_teacher, glue_dir, method="rules")
    student = _distil_at(tmp_path, tiny_teacher, glue_dir, transfer=str(out), word_vectors=str(glove_path),
                         lstm_hidden=16, mlp_hidden=16, lr=1e-2, epochs=1, alpha=0.5)
    m = json.loads((student / "manifest.json").read_text())
    assert m["inputs"]["train"]["rows"] == len(_rows(out)) and m["inputs"]["train"]["source"] == str(out)
    # --max-train-samples samples the transfer set's rows (not the GLUE rows it replaces)
    sampled = _distil_at(tmp_path / "sampled", tiny_teacher, glue_dir, transfer=str(out), max_train_samples=7,
                         word_vectors=str(glove_path), lstm_hidden=16, mlp_hidden=16, epochs=1)
    assert json.loads((sampled / "manifest.json").read_text())["inputs"]["train"]["rows"] == 7 < len(_rows(out))
    with pytest.raises(KdedgeError, match="was built for max length 128 \\(not 64\\)"):
        _distil_at(tmp_path / "x", tiny_teacher, glue_dir, transfer=str(out), max_length=64)
    # the n-gram student's --max-length counts words, not the teacher's tokens: any cap fits (the teacher's own dev
    # figure is the one it has beside the other students; SST-2's short rows read the same at either length)
    words = _distil_at(tmp_path / "ngram", tiny_teacher, glue_dir, transfer=str(out), student="ngram", ngram_dim=8,
                       ngram_buckets=50, ngram_hidden=0, epochs=1, max_length=1000)
    m = json.loads((words / "manifest.json").read_text())
    assert m["student"]["max_length"] == 1000
    assert m["metrics"]["teacher_dev"] == json.loads((student / "manifest.json").read_text())["metrics"]["teacher_dev"]


def test_augment_refuses_bad_options(tiny_teacher, glue_dir, tmp_path):
    with pytest.raises(KdedgeError, match="unknown --method paraphrase"):
        _augment(tmp_path, tiny_teacher, glue_dir, method="rules,paraphrase")
    with pytest.raises(KdedgeError, match="--method replace needs candidates"):
        _augment(tmp_path, tiny_teacher, glue_dir, name="r", method="replace")
    with pytest.raises(KdedgeError, match="--method generative needs --generator"):
        _augment(tmp_path, tiny_teacher, glue_dir, name="g", method="generative")
