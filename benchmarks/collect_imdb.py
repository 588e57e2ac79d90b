"""Summarise benchmarks/sst2_to_imdb.sh: per student recipe and transfer set, SST-2 dev and IMDB-eval retention
(mean and spread over the seeds, each seed's from its own `kdedge bench` run), the speed-up against the int8 teacher
in the same run and the bundle size; then the issue #22 target checked against the runs with the unlabeled half.

Bundles are named RECIPE-sSEED-int8 (transfer set (a), SST-2 only) and RECIPE-imdb-sSEED-int8 (set (b), with the
unlabeled IMDB half). Usage: python benchmarks/collect_imdb.py RESULTS_DIR
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from collections import defaultdict
from pathlib import Path

from collect_frontier import bundle_mb, spread

NAME = re.compile(r"^(?P<recipe>.+?)(?P<imdb>-imdb)?-s(?P<seed>\d+)-int8$")
SETS = {False: "SST-2 augmented", True: "SST-2 augmented + unlabeled IMDB half"}
# the target: bundle MB at most, speed-up vs the int8 teacher at least, SST-2 and IMDB retention at least
TARGET = (2.5, 12.0, 0.99, 0.97)


def collect(results: Path) -> tuple[dict, list[dict]]:
    found: dict[tuple[str, bool], dict] = defaultdict(lambda: defaultdict(list))
    teachers = []
    for report_file in sorted(results.glob("seed-*/report.json")):
        report = json.loads(report_file.read_text())
        paths = {m["name"]: Path(m["path"]) for m in
                 json.loads((report_file.parent / "manifest.json").read_text())["inputs"]["models"]}
        for row in report["rows"]:
            if row["status"] != "ok" or row["backend"] != "ort-cpu":
                continue
            if row["role"] == "teacher":
                teachers.append(row)
                continue
            m = NAME.match(row["model"])
            if not m:
                continue
            g = found[(m["recipe"], bool(m["imdb"]))]
            g["seeds"].append(int(m["seed"]))
            g["sst2"].append(row["metric"])
            g["sst2_retention"].append(row["retention"])
            g["imdb"].append(row["eval"]["imdb"]["metric"])
            g["imdb_retention"].append(row["eval"]["imdb"]["retention"])
            g["speedup_int8"].append(row["speedup_vs_teacher_int8"])
            g["p50_ms"].append(row["p50_ms"])
            g["bundle_mb"].append(bundle_mb(paths[row["model"]]))
    return found, teachers


def main(results: Path) -> None:
    found, teachers = collect(results)
    mean = statistics.mean
    print("Transfer sets: (a) " + SETS[False] + "; (b) " + SETS[True] + ". Retention against the fp32 teacher on the "
          "same rows; speed-up against the int8 teacher on ort-cpu in the same run (batch 1, 1 thread; mean and "
          "min–max over the seeds' runs).\n")
    by_name: dict[str, list[dict]] = defaultdict(list)
    for t in teachers:
        by_name[t["model"]].append(t)
    print("| model | transfer set | seeds | SST-2 accuracy, mean ± sd (min–max) | SST-2 retention | IMDB-eval accuracy "
          "| IMDB retention | p50 ms (b=1) | **speed-up vs int8 teacher** | bundle MB |")
    print("|---|---|---:|---|---:|---|---:|---:|---:|---:|")
    for name, rows in by_name.items():
        print(f"| {name} | – | – | {rows[0]['metric']:.4f} | {mean(r['retention'] for r in rows):.3f} "
              f"| {rows[0]['eval']['imdb']['metric']:.4f} | {mean(r['eval']['imdb']['retention'] for r in rows):.3f} "
              f"| {statistics.median(r['p50_ms'] for r in rows):.2f} | – | {rows[0]['size_mb']:.2f} (model.onnx) |")
    for (recipe, imdb), g in sorted(found.items()):
        print(f"| {recipe} | {'(b)' if imdb else '(a)'} | {len(g['seeds'])} | {spread(g['sst2'])} "
              f"| {mean(g['sst2_retention']):.3f} | {spread(g['imdb'])} | {mean(g['imdb_retention']):.3f} "
              f"| {statistics.median(g['p50_ms']):.3f} | {mean(g['speedup_int8']):.1f}× ({min(g['speedup_int8']):.1f}–"
              f"{max(g['speedup_int8']):.1f}) | {max(g['bundle_mb']):.2f} |")
    size, speed, sst2, imdb = TARGET
    met = [recipe for (recipe, with_imdb), g in found.items() if with_imdb and max(g["bundle_mb"]) <= size
           and mean(g["speedup_int8"]) >= speed and mean(g["sst2_retention"]) >= sst2
           and mean(g["imdb_retention"]) >= imdb and len(g["seeds"]) >= 3]
    print(f"\nTarget (int8, ≤ {size:g} MB, ≥ {speed:g}× the int8 teacher, SST-2 retention ≥ {sst2:.0%}, IMDB "
          f"retention ≥ {imdb:.0%}, mean of 3 seeds, set (b)): " + (f"met by {', '.join(met)}" if met else "NOT met"))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
