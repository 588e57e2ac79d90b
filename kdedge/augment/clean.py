"""Cleaning a transfer set: normalise, bound lengths, drop exact and near duplicates (within the set and of
any held-out example, dev's or an evaluation set's: a sentence scored later must never leak into training), and
count what each filter removed.

Near duplicates: MinHash (datasketch) over word 3-grams, LSH at the `threshold` Jaccard similarity.
The index lives for the whole run, so an example is compared with everything kept before it, across shards.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

from datasketch import MinHash, MinHashLSH

_SPACES = re.compile(r"\s+")
_NUM_PERM = 64


def normalize(text: str) -> str:
    """NFC, control characters dropped, whitespace runs collapsed to one space, ends stripped."""
    text = unicodedata.normalize("NFC", text)
    text = "".join(ch for ch in text if ch in "\t\n" or unicodedata.category(ch)[0] != "C")
    return _SPACES.sub(" ", text).strip()


def _key(text: str, pair: str | None) -> str:
    return text.lower() if pair is None else f"{text.lower()}\x1f{pair.lower()}"


def _shingles(text: str) -> list[bytes]:
    words = re.findall(r"\w+", text.lower())
    grams = [" ".join(words[i:i + 3]) for i in range(max(1, len(words) - 2))]
    return [g.encode() for g in grams if g]


class Cleaner:
    def __init__(self, *, min_words: int, max_words: int, near_duplicate: float, seed: int):
        self.min_words, self.max_words = min_words, max_words
        self.lsh = MinHashLSH(threshold=near_duplicate, num_perm=_NUM_PERM) if near_duplicate < 1 else None
        self.seed = seed
        self.exact: set[str] = set()
        self.held_out: dict[str, str] = {}  # exact key -> "dev" or "eval"
        self.removed: Counter = Counter()
        self._count = 0

    def _minhash(self, text: str, pair: str | None) -> MinHash:
        m = MinHash(num_perm=_NUM_PERM, seed=self.seed)
        m.update_batch(_shingles(text if pair is None else f"{text} \x1f {pair}"))
        return m

    def add_held_out(self, texts: list[str], pairs: list[str] | None, kind: str = "dev") -> None:
        """Held-out examples are never kept: exact or near copies of them are removed as `<kind>_leak` and
        `near_<kind>_leak` (kind: dev, or eval for the evaluation sets)."""
        for i, text in enumerate(texts):
            text, pair = normalize(text), None if pairs is None else normalize(pairs[i])
            self.held_out.setdefault(_key(text, pair), kind)
            self._remember(text, pair, f"held:{kind}")

    def _remember(self, text: str, pair: str | None, kind: str) -> None:
        if self.lsh is not None:
            self.lsh.insert(f"{kind}:{self._count}", self._minhash(text, pair))
            self._count += 1

    def keep(self, text: str, pair: str | None, *, original: bool = False) -> tuple[str, str | None] | None:
        """The normalised example, or None (the reason counted in `removed`). Original training rows are the
        task's own data: only dev leaks remove them, but they count for the duplicates of what comes after."""
        text = normalize(text)
        pair = None if pair is None else normalize(pair)
        words = len(text.split()) + (0 if pair is None else len(pair.split()))
        if not original and words < self.min_words:
            return self._drop("too_short")
        if not original and words > self.max_words:
            return self._drop("too_long")
        key = _key(text, pair)
        if key in self.held_out:
            return self._drop(f"{self.held_out[key]}_leak")
        if not original and key in self.exact:
            return self._drop("duplicate")
        minhash = self._minhash(text, pair) if self.lsh is not None else None
        if minhash is not None:
            near = self.lsh.query(minhash)
            leaked = sorted(n.split(":")[1] for n in near if n.startswith("held:"))
            if leaked:
                return self._drop(f"near_{leaked[0]}_leak")
            if near and not original:
                return self._drop("near_duplicate")
        self.exact.add(key)
        if minhash is not None:
            self.lsh.insert(f"set:{self._count}", minhash)
            self._count += 1
        return text, pair

    def _drop(self, reason: str) -> None:
        self.removed[reason] += 1
        return None
