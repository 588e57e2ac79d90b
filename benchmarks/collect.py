"""Print a Markdown table of the dev metrics, retention, size and time of finished runs.

Usage: python benchmarks/collect.py RUN_DIR NAME [NAME ...]
"""

import json
import sys
from pathlib import Path


def main(run: str, names: list[str]) -> None:
    print("| run | dev metric | teacher | retention | parameters | train time (s) |")
    print("|---|---|---|---|---|---|")
    for name in names:
        path = Path(run) / name / "metrics.json"
        if not path.is_file():
            print(f"| {name} | (not run) | | | | |")
            continue
        m = json.loads(path.read_text())
        dev = ", ".join(f"{k} {v:.4f}" for k, v in m["dev"].items())
        teacher = ", ".join(f"{k} {v:.4f}" for k, v in m.get("teacher_dev", {}).items()) or "-"
        retention = f"{m['retention']:.4f}" if m.get("retention") is not None else "-"
        params = f"{m['parameters']:,}" if "parameters" in m else "-"
        print(f"| {name} | {dev} | {teacher} | {retention} | {params} | {m.get('train_time_s', '-')} |")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
