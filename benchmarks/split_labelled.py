"""Split a labelled TSV (a header, the text first, the label last) into an unlabeled half (the texts alone, one a
line, labels dropped) and a labelled evaluation half, by a seeded shuffle: the same halves on every machine.

    python benchmarks/split_labelled.py FILE.tsv UNLABELED.txt EVAL.tsv [--unlabeled N] [--seed S]
"""

from __future__ import annotations

import argparse
import os
import random
from pathlib import Path


def write_whole(path: Path, text: str) -> None:
    """Write through a temporary file and rename it, so that a reader (another run sharing the folder) never sees
    half a file."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


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
    write_whole(args.unlabeled, "".join(r.split("\t")[0] + "\n" for r in mine))
    write_whole(args.eval, "\n".join([header, *held]) + "\n")
    print(f"{args.unlabeled}: {len(mine)} texts; {args.eval}: {len(held)} labelled rows (seed {args.seed})")


if __name__ == "__main__":
    main()
