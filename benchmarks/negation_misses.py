"""Where a student loses to its teacher: the share of SST-2 dev sentences holding a negation or contrast word, among
all of them, among those the teacher gets right and the student wrong, and among those the student gets right.

Usage: python benchmarks/negation_misses.py --dev SST-2/dev.tsv --teacher BUNDLE STUDENT_BUNDLE...
"""

from __future__ import annotations

import argparse
import re

from kdedge_runtime.classifier import Classifier
from kdedge_runtime.data import read_labelled

# words that turn or qualify what follows them, which a mean of word and bigram rows reads only one word ahead
NEGATION = re.compile(r"\b(not|no|never|nothing|without|but|yet|though|although)\b|n't", re.IGNORECASE)


def share(texts: list[str], indices: list[int]) -> str:
    hits = sum(bool(NEGATION.search(texts[i])) for i in indices)
    return f"{hits / max(len(indices), 1):.3f} of {len(indices)}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dev", required=True, help="GLUE SST-2 dev.tsv (sentence, label)")
    parser.add_argument("--teacher", required=True, help="the teacher's bundle")
    parser.add_argument("students", nargs="+", help="student bundles")
    args = parser.parse_args(argv)
    texts, _, label_ids = read_labelled(args.dev, ["sentence", "label"], True, ["0", "1"])
    teacher = Classifier(args.teacher, threads=1)
    gold = [teacher.labels[i] for i in label_ids]
    by_teacher = [p.label for p in teacher.predict(texts)]
    print(f"all dev sentences: {share(texts, list(range(len(texts))))}")
    for bundle in args.students:
        by_student = [p.label for p in Classifier(bundle, threads=1).predict(texts)]
        lost = [i for i, g in enumerate(gold) if by_teacher[i] == g != by_student[i]]
        right = [i for i, g in enumerate(gold) if by_student[i] == g]
        print(f"{bundle}: accuracy {len(right) / len(gold):.4f}; teacher right, student wrong: {share(texts, lost)}; "
              f"student right: {share(texts, right)}")


if __name__ == "__main__":
    main()
