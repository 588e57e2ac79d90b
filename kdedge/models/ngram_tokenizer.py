"""The n-gram student's tokenizer on the training side: the runtime's own rules (kdedge_runtime.ngram, so training and
every runtime compute the same ids) behind the calls kdedge's batching makes of a Hugging Face tokenizer, plus the
word vocabulary built from the training (transfer) texts."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from kdedge_runtime.ngram import (
    HASHES,
    NORMALIZATIONS,
    PAD_ID,
    SPLITS,
    NgramTokenizer,
    check_rules,
    read_vocabulary,
    words_of,
)

from kdedge.errors import KdedgeError
from kdedge.ngram_scopes import SCOPES

VOCAB_FILE = "ngram.json"  # {"words": [...]}: word i has id 1 + i


def ngram_rules(word_ngrams: int, char_ngrams: list[int], buckets: int, scopes: list[str] = ()) -> dict:
    """The rules a new student is trained with (version 1: the only normalisation, split and hash there are), with
    the named SCOPES; without scopes the rules have no "scopes" field, so that older runtimes read the bundle."""
    rules = {"normalization": NORMALIZATIONS[0], "split": SPLITS[0], "hash": HASHES[0], "word_ngrams": word_ngrams,
             "char_ngrams": list(char_ngrams), "buckets": buckets}
    if scopes:
        rules["scopes"] = [SCOPES[name] for name in scopes]
    return check_rules(rules, "rules")


def build_vocabulary(texts, min_count: int = 1, max_words: int | None = None) -> list[str]:
    """The words seen at least `min_count` times, most frequent first (ties: first seen first), at most `max_words`."""
    counts = Counter(w for text in texts for w in words_of(text))
    words = [w for w, n in counts.most_common() if n >= min_count]
    return words if max_words is None else words[:max_words]


class NgramTextTokenizer:
    """What kdedge.data.batching.encode asks of a tokenizer: `tokenizer(texts, truncation=, max_length=,
    add_special_tokens=)` -> {"input_ids", "attention_mask"}, and pad_token_id; saved as VOCAB_FILE."""

    pad_token_id = PAD_ID
    model_input_names = ("input_ids", "attention_mask")

    def __init__(self, words: list[str], rules: dict):
        self.rules = rules
        self.ids = NgramTokenizer(words, rules)

    def __len__(self) -> int:
        return self.ids.vocab_size

    def __call__(self, texts, text_pair=None, *, truncation: bool = True, max_length: int | None = None, **_) -> dict:
        if text_pair is not None:  # the student is siamese: batching encodes each side alone
            raise KdedgeError("the n-gram student reads each text of a pair on its own; encode them separately")
        single = isinstance(texts, str)
        self.ids.max_words = max_length if truncation else None
        ids = [self.ids.ids(t) for t in ([texts] if single else texts)]
        out = {"input_ids": ids, "attention_mask": [[1] * len(row) for row in ids]}
        return {k: v[0] for k, v in out.items()} if single else out

    def save_pretrained(self, path: str | Path) -> None:
        # compact, UTF-8: the file travels in the bundle
        text = json.dumps({"words": self.ids.words}, ensure_ascii=False, separators=(",", ":"))
        (Path(path) / VOCAB_FILE).write_text(text, encoding="utf-8")

    @classmethod
    def load(cls, path: Path, meta: dict) -> NgramTextTokenizer:
        return cls(read_vocabulary(path / VOCAB_FILE), check_rules(meta["ngram"], str(path / "student.json")))

    def bundle_entry(self) -> dict:
        """The manifest's tokenizer fields that are this tokenizer's own: its file and rules."""
        return {"file": VOCAB_FILE, "ngram": self.rules}
