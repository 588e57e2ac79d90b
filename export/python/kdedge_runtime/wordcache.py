"""A short path through a BERT-style tokenizer for one text of printable ASCII: the same ids, a few times faster.

For the smallest students the tokenizers library costs half the model's own run (about 30 µs for an SST-2 sentence
against 64 µs for a 2L-128 int8 model, Zen 5, one thread), mostly in its per-call machinery (normalizer, pre-tokenizer
and post-processor objects, offsets, the Encoding). On printable ASCII a BertNormalizer only lowercases (nothing to
clean, no accents, no CJK) and a BertPreTokenizer splits on spaces and on each ASCII punctuation character, so a
text's pieces are its words' pieces: this splits the text the same way, remembers each word's ids (from the
tokenizer's own model, on first sight) and adds the post-processor's special tokens, found once by a probe.

Anything else goes to the tokenizer: text that is not printable ASCII, text holding an added token's content (the
tokenizer matches those before normalising), pairs, and tokenizers of any other make (`WordCache.of` is None).
tests/test_wordcache.py holds the two paths to the same ids on every SST-2 dev sentence and on generated text.
"""

from __future__ import annotations

import json
import re

import numpy as np
from tokenizers import Tokenizer

_MODELS = ("WordPiece", "WordLevel")  # whose `tokenize(word)` is the whole story of a pre-token's ids
_WORDS = re.compile(r"[^ !-/:-@\[-`{-~]+|[!-/:-@\[-`{-~]")  # runs of letters and digits; each punctuation character
_CACHE = 1 << 18  # words remembered: at most 262,144 (tens of MB at the worst)


class WordCache:
    def __init__(self, tokenizer: Tokenizer, lowercase: bool, added: list[str], prefix: list[int],
                 suffix: list[int], body_limit: int):
        self.tokenizer, self.lowercase = tokenizer, lowercase
        # added tokens are matched in the raw text, case aside where they are normalised: any sign of one, and the
        # text takes the tokenizer's path
        self.added = re.compile("|".join(re.escape(a) for a in added), re.IGNORECASE) if added else None
        self.prefix, self.suffix, self.body_limit = prefix, suffix, body_limit
        self.pieces: dict[str, list[int]] = {}

    @classmethod
    def of(cls, tokenizer: Tokenizer, add_special_tokens: bool, max_length: int,
           spec: dict | None = None) -> WordCache | None:
        """The short path for `tokenizer` (set up to truncate to `max_length`; `spec` its JSON where the caller has
        it), or None when its pipeline is not one this reproduces."""
        spec = spec if spec is not None else json.loads(tokenizer.to_str())
        normalizer, pre_tokenizer, model = spec.get("normalizer") or {}, spec.get("pre_tokenizer") or {}, spec["model"]
        if (normalizer.get("type") != "BertNormalizer" or pre_tokenizer.get("type") != "BertPreTokenizer"
                or model.get("type") not in _MODELS or (tokenizer.truncation or {}).get("direction") != "right"):
            return None
        added = [t["content"] for t in spec.get("added_tokens") or [] if t["content"]]
        probe = "probe"
        body = tokenizer.encode(probe, add_special_tokens=False).ids
        full = tokenizer.encode(probe, add_special_tokens=add_special_tokens).ids
        start = next((i for i in range(len(full) - len(body) + 1) if full[i:i + len(body)] == body), None)
        if not body or start is None:
            return None
        prefix, suffix = full[:start], full[start + len(body):]
        if max_length - len(prefix) - len(suffix) < 1:
            return None
        return cls(tokenizer, bool(normalizer.get("lowercase")), added, prefix, suffix,
                   max_length - len(prefix) - len(suffix))

    def ids(self, text: str) -> list[int] | None:
        """The ids `tokenizer.encode(text)` gives, or None where this path does not apply."""
        if not (text.isascii() and text.isprintable()) or (self.added and self.added.search(text)):
            return None
        if self.lowercase:
            text = text.lower()
        pieces, body = self.pieces, []
        for word in _WORDS.findall(text):
            known = pieces.get(word)
            if known is None:
                known = [token.id for token in self.tokenizer.model.tokenize(word)]
                if len(pieces) < _CACHE:
                    pieces[word] = known
            body += known
            if len(body) >= self.body_limit:
                del body[self.body_limit:]
                break
        return self.prefix + body + self.suffix

    def row(self, text: str) -> np.ndarray | None:
        """`ids` as a batch of one (int64, shape 1 x n), or None where this path does not apply."""
        ids = self.ids(text)
        return None if ids is None else np.array(ids, dtype=np.int64)[None]
