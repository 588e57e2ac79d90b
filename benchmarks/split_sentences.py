"""Split unlabelled documents (one a line) into sentences (one a line): a review's "<br />" breaks, then a full stop,
question or exclamation mark (runs of them, and a closing quote or bracket after them) followed by white space and an
upper-case letter, a digit or an opening quote or bracket. Pieces of fewer than MIN_WORDS words (white-space separated)
are dropped. A rule, not a trained splitter: "Mr. Smith" splits, which for unlabelled text costs a short fragment.

    python benchmarks/split_sentences.py DOCS.txt SENTENCES.txt [--min-words 3]
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from split_labelled import write_whole

BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
END = re.compile(r"""(?<=[.!?])["')\]]*\s+(?=[A-Z0-9"'(\[])""")


def sentences(document: str, min_words: int) -> list[str]:
    pieces = [s.strip() for part in BREAK.split(document) for s in END.split(part)]
    return [s for s in pieces if len(s.split()) >= min_words]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("docs", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--min-words", type=int, default=3)
    args = parser.parse_args()
    docs = [d for d in args.docs.read_text(encoding="utf-8").split("\n") if d.strip()]  # as kdedge augment reads it
    out = [s for d in docs for s in sentences(d, args.min_words)]
    write_whole(args.out, "".join(s + "\n" for s in out))
    print(f"{len(docs)} documents -> {len(out)} sentences of {args.min_words}+ words in {args.out}")


if __name__ == "__main__":
    main()
