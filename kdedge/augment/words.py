"""Word-level splitting shared by the augmenters: words and punctuation as separate tokens, rejoined with
single spaces (the SST-2 convention; the teacher labels whatever comes out), and the variants loop they share."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

_TOKEN = re.compile(r"\w+(?:['’]\w+)*|[^\w\s]")


def split_words(text: str) -> list[str]:
    return _TOKEN.findall(text)


def join_words(words: list[str]) -> str:
    return " ".join(words)


def is_word(token: str) -> bool:
    return token[:1].isalnum()


def one_side_variants(first: list[list[str]], second: list[list[str]] | None, n: int,
                      vary: Callable[[int, int, list[str]], list[str]]) -> Iterator[tuple[int, str, str | None]]:
    """(index of the original, text, pair) for n variants of each example; vary(side, index, words) rewrites one
    sentence. A pair's variant rewrites one side and keeps the other as written, the sides in turn (as TinyBERT's
    augmentation does): rewriting both made the MRPC teacher call 81 % of the word-replaced variants
    non-paraphrases, a transfer set skewed far from the task, and the students trained on it fell below the
    majority class."""
    for i, words in enumerate(first):
        for k in range(n):
            if second is None:
                yield i, join_words(vary(0, i, words)), None
            elif (i + k) % 2 == 0:  # the sides alternate, so an odd n still varies both sides across the set
                yield i, join_words(vary(0, i, words)), join_words(second[i])
            else:
                yield i, join_words(words), join_words(vary(1, i, second[i]))
