"""Vocabulary trimming (as TextPruner does): a student that shares the teacher's WordPiece vocabulary keeps only the
tokens its training and transfer texts use (plus the special tokens), with ids renumbered, the embedding table cut
to those rows and the tokenizer rewritten to match. A text whose pieces are all kept is tokenized exactly as before
(WordPiece matches the longest piece first, and no longer one was added); a word whose piece was dropped is spelled
with shorter kept pieces, or becomes [UNK] when it cannot be.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch
from tokenizers import Tokenizer
from transformers import AutoTokenizer

from kdedge.errors import KdedgeError


@dataclass
class TrimmedVocabulary:
    tokenizer: object  # the rewritten transformers tokenizer
    kept_ids: torch.Tensor  # student id -> teacher id

    def describe(self, original_size: int, min_count: int) -> dict:
        return {"kept": len(self.kept_ids), "of": original_size, "min_count": min_count}


def count_tokens(tokenizer, texts: list[str], pairs: list[str] | None = None, batch_size: int = 1024) -> Counter:
    """How often each token id occurs in the texts (special tokens aside)."""
    counts: Counter = Counter()
    for start in range(0, len(texts), batch_size):
        for column in (texts, pairs):
            if column is not None:
                for ids in tokenizer(column[start:start + batch_size], add_special_tokens=False)["input_ids"]:
                    counts.update(ids)
    return counts


def trim_vocabulary(tokenizer, counts: Counter, min_count: int = 1) -> TrimmedVocabulary:
    """A tokenizer keeping the tokens seen at least `min_count` times and every special token."""
    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    model = spec.get("model", {})
    if model.get("type") != "WordPiece":
        raise KdedgeError(f"--trim-vocab rewrites WordPiece vocabularies (BERT family); this tokenizer's model is "
                          f"{model.get('type')}")
    special = {t["id"] for t in spec.get("added_tokens", [])} | {model["vocab"][model["unk_token"]]}
    keep = sorted(special | {i for i, n in counts.items() if n >= min_count})
    by_id = {i: token for token, i in model["vocab"].items()}
    new_id = {by_id[old]: new for new, old in enumerate(keep)}
    model["vocab"] = new_id
    for added in spec.get("added_tokens", []):
        added["id"] = new_id[added["content"]]
    spec["post_processor"] = _renumber(spec.get("post_processor"), new_id)
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer.save_pretrained(tmp)
        for stale in ("vocab.txt", "tokenizer.json"):
            Path(tmp, stale).unlink(missing_ok=True)
        Tokenizer.from_str(json.dumps(spec)).save(str(Path(tmp, "tokenizer.json")))
        trimmed = AutoTokenizer.from_pretrained(tmp)
    return TrimmedVocabulary(trimmed, torch.tensor(keep, dtype=torch.long))


def _renumber(node, new_id: dict):
    """The post-processor with its special tokens' ids renumbered (TemplateProcessing's `ids`, BertProcessing's
    [token, id] pairs)."""
    if isinstance(node, dict):
        if "ids" in node and "tokens" in node:
            return {**node, "ids": [new_id[t] for t in node["tokens"]]}
        return {k: _renumber(v, new_id) for k, v in node.items()}
    if isinstance(node, list):
        if len(node) == 2 and isinstance(node[0], str) and isinstance(node[1], int) and node[0] in new_id:
            return [node[0], new_id[node[0]]]
        return [_renumber(v, new_id) for v in node]
    return node


def trim_embeddings(model: torch.nn.Module, kept_ids: torch.Tensor) -> None:
    """Cut the model's input embedding table to the kept rows, in the new id order."""
    old = model.get_input_embeddings()
    pad = None if old.padding_idx is None else (kept_ids == old.padding_idx).nonzero().flatten().tolist()
    new = torch.nn.Embedding(len(kept_ids), old.embedding_dim, padding_idx=pad[0] if pad else None)
    with torch.no_grad():
        new.weight.copy_(old.weight[kept_ids])
    model.set_input_embeddings(new)
    model.config.vocab_size = len(kept_ids)
