"""Intermediate-layer distillation across tokenizers: token matches by character offsets, the teacher's states on the
student's tokens, and a tiny distillation between two BERTs with different vocabularies."""

import json

import pytest
import torch

from kdedge.distill.align import aligned, cross_tokenizer_features, token_matches
from tests.conftest import _distil_at, build_tiny_bert

NONE = None


def test_a_word_split_differently_matches_every_piece_that_covers_it():
    # "unbelievable film": student [CLS] un ##believ ##able film [SEP]; teacher <s> unbeliev able film </s>
    s_seq, s_off = [NONE, 0, 0, 0, 0, NONE], [(0, 0), (0, 2), (2, 8), (8, 12), (13, 17), (0, 0)]
    t_seq, t_off = [NONE, 0, 0, 0, NONE], [(0, 0), (0, 8), (8, 12), (13, 17), (0, 0)]
    assert token_matches(s_seq, s_off, t_seq, t_off) == [(0, 0), (1, 1), (2, 1), (3, 2), (4, 3), (5, 4)]
    # and the other way round: a teacher token split in two is covered by both student tokens
    assert token_matches(t_seq, t_off, s_seq, s_off) == [(0, 0), (1, 1), (1, 2), (2, 3), (3, 4), (4, 5)]


def test_pairs_match_within_their_own_sequence_and_special_tokens_first_and_last():
    # text "a b", pair "a": student [CLS] a b [SEP] a [SEP]; teacher <s> a b </s> </s> a </s> (one more special)
    s_seq, s_off = [NONE, 0, 0, NONE, 1, NONE], [(0, 0), (0, 1), (2, 3), (0, 0), (0, 1), (0, 0)]
    t_seq, t_off = [NONE, 0, 0, NONE, NONE, 1, NONE], [(0, 0), (0, 1), (2, 3), (0, 0), (0, 0), (0, 1), (0, 0)]
    matches = token_matches(s_seq, s_off, t_seq, t_off)
    assert matches == [(0, 0), (1, 1), (2, 2), (4, 5), (5, 6)]  # the middle separators differ in number: left out
    assert (4, 1) not in matches  # same characters, other sequence


def test_aligned_averages_the_covering_teacher_tokens_and_masks_unmatched_ones():
    teacher = torch.tensor([[[1.0, 0.0], [3.0, 2.0], [5.0, 4.0], [7.0, 6.0]]])  # (1, 4 tokens, 2)
    batch = {"align_s": torch.tensor([[1, 2, 2, 0]]), "align_t": torch.tensor([[1, 2, 3, 0]])}  # 1-based, 0 = pad
    states, matched = aligned(teacher, batch, student_length=3)
    assert states.shape == (1, 3, 2)
    assert torch.allclose(states[0, 0], teacher[0, 0])
    assert torch.allclose(states[0, 1], (teacher[0, 1] + teacher[0, 2]) / 2)
    assert matched.tolist() == [[True, True, False]]


@pytest.fixture(scope="module")
def two_vocabularies(tmp_path_factory, glue_dir):
    from kdedge.config import DataOptions
    from kdedge.data import load_task_data

    data = load_task_data(DataOptions(task="sst2", data_dir=str(glue_dir), max_train_samples=2000))
    texts = data.train.text + data.dev.text
    root = tmp_path_factory.mktemp("vocabularies")
    teacher = build_tiny_bert(root / "teacher", texts, 2, label_names=("negative", "positive"))
    student = build_tiny_bert(root / "student", texts[:500], 2, label_names=("negative", "positive"),
                              vocab_size=250, seed=1)
    return teacher, student, data


def test_real_tokenizers_match_on_overlapping_characters(two_vocabularies):
    from transformers import AutoTokenizer

    teacher, student, data = two_vocabularies
    s_tok, t_tok = AutoTokenizer.from_pretrained(student), AutoTokenizer.from_pretrained(teacher)
    split = data.dev.select(list(range(50)))
    features = cross_tokenizer_features(s_tok, t_tok, split, 64)
    differ = 0
    for i, f in enumerate(features):
        s = s_tok(split.text[i], truncation=True, max_length=64, return_offsets_mapping=True)
        t = t_tok(split.text[i], truncation=True, max_length=64, return_offsets_mapping=True)
        assert f["teacher_input_ids"] == t["input_ids"]
        differ += s["input_ids"] != t["input_ids"]
        matched = set(f["align_s"])
        for k, (a, b) in enumerate(s["offset_mapping"]):
            if b > a:  # every real student token is covered by some teacher token
                assert k + 1 in matched
        for si, ti in zip(f["align_s"], f["align_t"]):
            (a, b), (c, d) = s["offset_mapping"][si - 1], t["offset_mapping"][ti - 1]
            assert (a, b) == (c, d) == (0, 0) or min(b, d) > max(a, c)
    assert differ > 40  # the two vocabularies really split differently


def test_distillation_across_tokenizers_runs_and_lowers_the_hidden_loss(two_vocabularies, glue_dir, tmp_path):
    from kdedge.errors import KdedgeError
    from kdedge.outputs import read_json

    teacher, student, _ = two_vocabularies
    common = dict(student="tinybert", init=f"pretrained:{student}", recipe="two-stage", intermediate_epochs=3,
                  epochs=1, max_train_samples=300, lr=1e-3, log_steps=5)
    with pytest.raises(KdedgeError, match="set --w-att 0"):
        _distil_at(tmp_path / "refused", teacher, glue_dir, **common)
    out = _distil_at(tmp_path / "ok", teacher, glue_dir, w_att=0.0, **common)
    records = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    log = [r for r in records if r["stage"] == "intermediate" and "loss" in r]
    metrics = read_json(out / "metrics.json")
    assert [s["stage"] for s in metrics["stages"]] == ["intermediate", "prediction"]
    assert log, "the intermediate stage logged no losses"
    assert log[-1]["loss"] < log[0]["loss"]
