"""The augmentation benchmark's table: each BiLSTM student, its transfer set's size and throughput (all rows
over the whole run; "labelling" is the teacher's share of the wall time).

Usage: python benchmarks/collect_augment.py RUN_DIR
"""

import json
import sys
from pathlib import Path


def main(run: str) -> None:
    run = Path(run)
    print("| transfer set | rows (by source) | removed by filter | wall s (labelling s) | examples/s "
          "| student dev accuracy | teacher | retention |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for name in ("none", "replace", "rules", "rules-spacy", "replace-rules", "generative", "all"):
        student = run / f"bilstm-aug-{name}" / "metrics.json"
        if not student.is_file():
            continue
        s = json.loads(student.read_text())
        transfer = run / f"transfer-{name}" / "manifest.json"
        if transfer.is_file():
            t = json.loads(transfer.read_text())["metrics"]
            rows = f"{t['rows']:,} ({', '.join(f'{k} {v:,}' for k, v in t['rows_by_source'].items())})"
            removed = ", ".join(f"{k} {v:,}" for k, v in t["removed_by_filter"].items()) or "-"
            wall = f"{t['wall_time_s']:.0f} ({t['teacher_labelling_s']:.0f})"
            speed = f"{t['examples_per_s']:.0f}"
        else:
            rows, removed, wall, speed = "20,000 (original, no augmentation)", "-", "-", "-"
        print(f"| {name} | {rows} | {removed} | {wall} | {speed} | {s['dev']['accuracy']:.4f} "
              f"| {s['teacher_dev']['accuracy']:.4f} | {s['retention']:.3f} |")


if __name__ == "__main__":
    main(sys.argv[1])
