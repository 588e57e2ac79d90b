"""Print a Markdown table of exported bundles: precision, size, dev metric through ONNX Runtime vs PyTorch.

Usage: python benchmarks/collect_bundles.py BUNDLES_DIR
"""

import json
import sys
from pathlib import Path


def main(folder: str) -> None:
    print("| bundle | precision | scheme | model.onnx MB | dev (ONNX Runtime) | dev (PyTorch) | argmax agreement | max abs logit diff |")
    print("|---|---|---|---|---|---|---|---|")
    for manifest in sorted(Path(folder).glob("*/manifest.json")):
        m = json.loads(manifest.read_text())
        main_metric = m["task"]["metrics"][0]
        size = m["files"]["model.onnx"]["bytes"] / 1e6
        p = m["parity"]
        print(f"| {manifest.parent.name} | {m['precision']} | {m['quantization'].get('scheme', 'none')} | {size:.2f} | "
              f"{m['dev']['onnx'][main_metric]:.4f} | {m['dev']['pytorch'][main_metric]:.4f} | "
              f"{p.get('argmax_agreement', float('nan')):.4f} | {p['max_abs_diff']:.2e} |")


if __name__ == "__main__":
    main(sys.argv[1])
