"""Intermediate-layer distillation across tokenizers: the teacher reads the text with its own tokenizer, and each
student token is matched with the teacher tokens whose characters it covers (their character offsets overlap, in
the same sequence of a pair). The teacher's hidden states, averaged over those tokens, are what the student's
(projected) hidden states learn; special tokens match in order (first with first, last with last, all of them when
the two templates have as many). A student token no teacher token covers is left out of the loss.

Features carry the teacher's input ids and mask and the matches as two index lists (`align_s`, `align_t`, 1-based
so that the collator's zero padding means "no match"); `aligned` turns a batch of them into teacher states on the
student's tokens.
"""

from __future__ import annotations

import numpy as np
import torch

from kdedge.data.loaders import Split
from kdedge.errors import KdedgeError

TEACHER_KEYS = {"input_ids": "teacher_input_ids", "attention_mask": "teacher_attention_mask",
                "token_type_ids": "teacher_token_type_ids"}


def _content_spans(sequences: list, offsets: list) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the tokens that cover characters, and their (sequence, start, end)."""
    kept = [(i, q, a, b) for i, (q, (a, b)) in enumerate(zip(sequences, offsets)) if q is not None and b > a]
    table = np.array(kept, dtype=np.int64).reshape(-1, 4)
    return table[:, 0], table[:, 1:]


def token_matches(s_sequences: list, s_offsets: list, t_sequences: list, t_offsets: list) -> list[tuple[int, int]]:
    """(student position, teacher position) pairs for one example. `*_sequences` are the tokenizers'
    sequence ids (None for special tokens), `*_offsets` their (start, end) character offsets."""
    pairs = []
    s_special = [i for i, s in enumerate(s_sequences) if s is None]
    t_special = [j for j, s in enumerate(t_sequences) if s is None]
    if len(s_special) == len(t_special):
        pairs += list(zip(s_special, t_special))
    elif s_special and t_special:
        pairs += [(s_special[0], t_special[0]), (s_special[-1], t_special[-1])]
    s_pos, s = _content_spans(s_sequences, s_offsets)
    t_pos, t = _content_spans(t_sequences, t_offsets)
    if len(s) and len(t):
        overlap = ((s[:, None, 0] == t[None, :, 0]) & (np.minimum(s[:, None, 2], t[None, :, 2])
                                                       > np.maximum(s[:, None, 1], t[None, :, 1])))
        rows, cols = np.nonzero(overlap)
        pairs += list(zip(s_pos[rows].tolist(), t_pos[cols].tolist()))
    return sorted(pairs)


def _encode_with_offsets(tokenizer, split: Split, max_length: int, add_special_tokens: bool = True):
    if not getattr(tokenizer, "is_fast", False):
        raise KdedgeError(f"matching tokens across tokenizers needs character offsets, which only fast tokenizers "
                          f"give; {type(tokenizer).__name__} is not one")
    kw = dict(truncation=True, max_length=max_length, add_special_tokens=add_special_tokens,
              return_offsets_mapping=True)
    return tokenizer(split.text, split.text_pair, **kw) if split.text_pair is not None else tokenizer(split.text, **kw)


def cross_tokenizer_features(student_tokenizer, teacher_tokenizer, split: Split, max_length: int, *,
                             add_special_tokens: bool = True) -> list[dict]:
    """Per example: the teacher's inputs (TEACHER_KEYS) and the token matches (`align_s`, `align_t`, 1-based)."""
    s_enc = _encode_with_offsets(student_tokenizer, split, max_length, add_special_tokens)
    t_enc = _encode_with_offsets(teacher_tokenizer, split, max_length)
    features = []
    for i in range(len(split)):
        pairs = token_matches(s_enc.sequence_ids(i), s_enc["offset_mapping"][i],
                              t_enc.sequence_ids(i), t_enc["offset_mapping"][i])
        f = {TEACHER_KEYS[k]: t_enc[k][i] for k in TEACHER_KEYS if k in t_enc}
        f["align_s"] = [a + 1 for a, _ in pairs]
        f["align_t"] = [b + 1 for _, b in pairs]
        features.append(f)
    return features


def teacher_inputs(batch: dict, pad_token_id: int) -> dict:
    """The teacher's own inputs from a batch of cross-tokenizer features (padding set to the teacher's pad id)."""
    inputs = {k: batch[v] for k, v in TEACHER_KEYS.items() if v in batch}
    inputs["input_ids"] = inputs["input_ids"].masked_fill(inputs["attention_mask"] == 0, pad_token_id)
    return inputs


def aligned(teacher_states: torch.Tensor, batch: dict, student_length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Teacher states (batch, teacher seq, dim) averaged onto the student's tokens (batch, student seq, dim), and the
    mask of student tokens that have a match."""
    s_idx, t_idx = batch["align_s"], batch["align_t"]
    b, t_len = teacher_states.shape[:2]
    weights = torch.zeros(b, student_length + 1, t_len + 1, device=teacher_states.device, dtype=teacher_states.dtype)
    rows = torch.arange(b, device=s_idx.device)[:, None].expand_as(s_idx)
    weights[rows, s_idx, t_idx] = 1.0  # index 0 is the padding of the match lists
    weights = weights[:, 1:, 1:]
    counts = weights.sum(-1, keepdim=True)
    return (weights / counts.clamp(min=1)) @ teacher_states, counts.squeeze(-1) > 0
