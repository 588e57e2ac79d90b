"""Classify lines from stdin with a kdedge bundle; one JSON object per line on stdout.

    python classify.py BUNDLE_DIR < sentences.txt
    printf 'A man is playing.\tSomeone plays.\n' | python classify.py STSB_BUNDLE   # pairs: tab-separated
"""

import json
import sys

from kdedge_runtime import Classifier


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: python classify.py BUNDLE_DIR < lines.txt")
    classifier = Classifier(sys.argv[1])
    lines = [line.rstrip("\n") for line in sys.stdin]
    if classifier.is_pair:
        halves = [line.split("\t", 1) + [""] * ("\t" not in line) for line in lines]
        predictions = classifier.predict([h[0] for h in halves], [h[1] for h in halves])
    else:
        predictions = classifier.predict(lines)
    for line, p in zip(lines, predictions):
        print(json.dumps({"text": line, "label": p.label, "score": round(p.score, 6)}, ensure_ascii=False))


if __name__ == "__main__":
    main()
