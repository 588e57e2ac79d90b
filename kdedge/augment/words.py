"""Word-level splitting shared by the augmenters: words and punctuation as separate tokens, rejoined with
single spaces (the SST-2 convention; the teacher labels whatever comes out)."""

from __future__ import annotations

import re

_TOKEN = re.compile(r"\w+(?:['’]\w+)*|[^\w\s]")


def split_words(text: str) -> list[str]:
    return _TOKEN.findall(text)


def join_words(words: list[str]) -> str:
    return " ".join(words)


def is_word(token: str) -> bool:
    return token[:1].isalnum()
