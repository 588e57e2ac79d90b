"""Split a labelled TSV (a header, the text first, the label last) into an unlabeled half (the texts alone, one a
line, labels dropped) and a labelled evaluation half, by a seeded shuffle: the same halves on every machine.

    python benchmarks/split_labelled.py FILE.tsv UNLABELED.txt EVAL.tsv [--unlabeled N] [--seed S]
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("unlabeled", type=Path)
    parser.add_argument("eval", type=Path)
    parser.add_argument("--unlabeled-rows", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    # split on "\n" alone: reviews hold characters that str.splitlines() also breaks at (U+0085, U+2028)
    header, *rows = args.file.read_text(encoding="utf-8").rstrip("\n").split("\n")
    rows = [r for r in rows if r.strip()]
    random.Random(args.seed).shuffle(rows)
    mine, held = rows[: args.unlabeled_rows], rows[args.unlabeled_rows:]
    args.unlabeled.write_text("".join(r.split("\t")[0] + "\n" for r in mine), encoding="utf-8")
    args.eval.write_text("\n".join([header, *held]) + "\n", encoding="utf-8")
    print(f"{args.unlabeled}: {len(mine)} texts; {args.eval}: {len(held)} labelled rows (seed {args.seed})")


if __name__ == "__main__":
    main()
