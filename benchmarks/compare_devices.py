"""Compare two device reports of the same bundles on the same data (`kdedge-device-bench --with-logits`): the metric
on each, how often the predictions agree, the largest logit difference; latency shown per device, flagged where
the device was emulated.

Usage: python benchmarks/compare_devices.py REFERENCE.json OTHER.json
"""

from __future__ import annotations

import sys

import numpy as np

from kdedge_runtime.bench import load_report


def describe(report: dict) -> str:
    d = report["device"]
    cpu = d["cpu"]
    return (f"{d['name']}: {cpu['model']} ({cpu['machine']}{', emulated' if cpu.get('emulated') else ''}), int8 flags "
            f"{', '.join(f for f, v in cpu['flags'].items() if v) or 'none'}, preset {cpu['int8_preset']}; "
            f"onnxruntime {d['versions'].get('onnxruntime')}, numpy {d['versions'].get('numpy')}, "
            f"python {d['versions'].get('python')}")


def main(reference_path: str, other_path: str) -> None:
    reference, other = load_report(reference_path), load_report(other_path)
    if reference["data"]["sha256"] != other["data"]["sha256"] or reference["data"]["rows"] != other["data"]["rows"]:
        sys.exit("the two reports scored different data")
    emulated = other["device"]["cpu"].get("emulated", False)
    print(f"- reference: {describe(reference)}\n- other: {describe(other)}\n")
    print(f"Data: {reference['data']['file']}, {reference['data']['rows']} rows.\n")
    print("| bundle | precision | metric (reference) | metric (other) | predictions agree | max abs logit diff "
          "| p50 ms b=1 (reference) | p50 ms b=1 (other) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    rows = {r["model_sha256"]: r for r in other["bundles"]}
    for r in reference["bundles"]:
        o = rows.get(r["model_sha256"])
        if o is None:
            print(f"| {r['name']} | – | not in {other_path} | | | | | |")
            continue
        a, b = np.asarray(r["logits"]), np.asarray(o["logits"])
        agree = float((a.argmax(-1) == b.argmax(-1)).mean()) if a.shape[-1] > 1 else float("nan")
        main_metric = r["main_metric"]
        print(f"| {r['name']} | {r['precision']} | {r['metrics'][main_metric]:.4f} | {o['metrics'][main_metric]:.4f} "
              f"| {agree:.4f} | {np.abs(a - b).max():.2e} | {r['latency']['1']['p50_ms']:.3f} "
              f"| {o['latency']['1']['p50_ms']:.3f}{' (emulated: not a real figure)' if emulated else ''} |")


if __name__ == "__main__":
    main(*sys.argv[1:3])
