"""Where dynamic int8 loses a model's accuracy: the dev metric with each group of MatMuls left in float.

Reads an fp32 bundle (`kdedge export --quantize none`). For each variant it quantizes that bundle's model.onnx as
`kdedge export --quantize dynamic` does (kdedge.onnx.quantize, the same preset), but with the variant's nodes left
in float (`--keep-float`). It writes the result as a bundle beside the others and scores the dev set one example at a
time, as `kdedge bench` scores dynamic int8. Variants:
  fp32, int8        the two ends;
  <group>           one kind of MatMul in float in every layer (attention products; q, k, v; the attention output;
                    the FFN's input and output projections);
  ffn-out-<k>       only layer k's FFN output projection in float;
  auto              the nodes `--keep-float auto` finds (kdedge.onnx.keep_float.search) on --calibration-size
                    training rows.
Writes OUT/results.json and OUT/results.md; every variant's bundle stays in OUT/bundles/ (for `kdedge bench`).
Resumes: a variant whose bundle and score exist is not redone.

  python benchmarks/int8_keep_float.py FP32_BUNDLE --out DIR [--variants int8,ffn-out,auto] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "export" / "python")]

from kdedge.config import DataOptions  # noqa: E402
from kdedge.data import compute_metrics, load_task_data  # noqa: E402
from kdedge.data.recorded import recorded_data_options  # noqa: E402
from kdedge.onnx import keep_float  # noqa: E402
from kdedge.onnx.quantize import quantize  # noqa: E402
from kdedge.outputs import sha256_file  # noqa: E402
from kdedge_runtime import Classifier  # noqa: E402
from kdedge_runtime.cpu import preset_for, read_cpu  # noqa: E402

# node-name parts of a BERT-family export (torch.onnx / optimum names: .../layer.K/attention/..., .../intermediate/...)
GROUPS = {
    "attention-products": ["attention/attn/MatMul", "attention/self/MatMul"],
    "qkv": ["attn/q/", "attn/k/", "attn/v/", "self/query/", "self/key/", "self/value/"],
    "attention-out": ["attn/o/", "attention/output/dense"],
    "ffn-in": ["intermediate/dense"],
    "ffn-out": ["/output/dense"],
}


def layers(all_nodes: list[str]) -> int:
    return 1 + max((int(n.split("layer.")[1].split("/")[0]) for n in all_nodes if "layer." in n), default=-1)


def nodes_of(all_nodes: list[str], variant: str) -> list[str]:
    if variant == "int8":
        return []
    if variant.startswith("ffn-out-"):
        part = f"layer.{variant.removeprefix('ffn-out-')}/output/dense"
        return [n for n in all_nodes if part in n and "attention" not in n]
    parts = GROUPS[variant]
    found = [n for n in all_nodes if any(p in n for p in parts)]
    return [n for n in found if "attention" not in n] if variant == "ffn-out" else found


def write_bundle(fp32: Path, out: Path, model: Path, description: dict) -> None:
    """A copy of the fp32 bundle with `model` as its model.onnx, the manifest saying what it is."""
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(fp32, partial, ignore=shutil.ignore_patterns("model.onnx"))
    shutil.copy(model, partial / "model.onnx")
    manifest = json.loads((fp32 / "manifest.json").read_text())
    manifest["files"]["model.onnx"] = {"sha256": sha256_file(partial / "model.onnx"),
                                       "bytes": (partial / "model.onnx").stat().st_size}
    manifest["precision"], manifest["quantization"] = "int8", description
    for measured_on_fp32 in ("dev", "parity"):  # the fp32 export's figures; this script scores the copy itself
        manifest.pop(measured_on_fp32, None)
    (partial / "manifest.json").write_text(json.dumps(manifest, indent=1))
    shutil.rmtree(out, ignore_errors=True)
    partial.rename(out)


def calibration_feeds(bundle: Path, data, size: int, seed: int) -> list[dict]:
    """`size` training rows (seeded), one feed each at its real length: what `kdedge export` calibrates on."""
    classifier = Classifier(bundle)
    rows = np.sort(np.random.default_rng(seed).choice(len(data.train), size=min(size, len(data.train)),
                                                      replace=False))
    feeds = []
    for i in rows:
        pair = [data.train.text_pair[i]] if data.train.text_pair is not None else None
        features = classifier.encode([data.train.text[i]], pair)
        feeds.append(classifier.pad([{k: v[0] for k, v in features.items() if k != "lengths"}]))
    return feeds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("fp32", type=Path, help="an fp32 bundle (kdedge export --quantize none)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--variants", default="fp32,int8,auto,attention-products,qkv,attention-out,ffn-in,ffn-out,"
                                               "ffn-out-each")
    parser.add_argument("--data-dir", default=None, help="GLUE folder (default: KDEDGE_DATA_DIR)")
    parser.add_argument("--calibration-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    manifest = json.loads((args.fp32 / "manifest.json").read_text())
    if manifest["quantization"].get("scheme") != "none":
        sys.exit(f"{args.fp32} is not an fp32 bundle")
    options = {"task": manifest["task"]["name"], **recorded_data_options(args.fp32)}
    if args.data_dir:
        options["data_dir"] = args.data_dir
    data = load_task_data(DataOptions(**options))
    model, preset = args.fp32 / "model.onnx", manifest.get("config", {}).get("preset", "auto")
    preset = preset_for(*read_cpu()) if preset in (None, "auto") else preset
    all_nodes = keep_float.quantizable_nodes(model)
    variants = args.variants.split(",")
    if "ffn-out-each" in variants:
        i = variants.index("ffn-out-each")
        variants[i:i + 1] = [f"ffn-out-{k}" for k in range(layers(all_nodes))]

    args.out.mkdir(parents=True, exist_ok=True)
    results_file = args.out / "results.json"
    results = json.loads(results_file.read_text()) if results_file.is_file() else {}
    results = {k: v for k, v in results.items() if k in variants}
    for variant in variants:
        bundle = args.fp32 if variant == "fp32" else args.out / "bundles" / variant
        if variant in results and (variant == "fp32" or bundle.is_dir()):
            continue
        started = time.time()
        entry: dict = {}
        if variant != "fp32":
            (args.out / "work").mkdir(exist_ok=True)
            quantized = args.out / "work" / "model.onnx"

            def quantize_keeping(kept, dst):
                return quantize("dynamic", model, dst, architecture=manifest["architecture"], preset=preset,
                                keep_float=kept)

            if variant == "auto":
                search = keep_float.search(model, quantize_keeping,
                                           calibration_feeds(args.fp32, data, args.calibration_size, args.seed),
                                           args.out / "work")
                kept, entry["search"] = search["nodes"], search
            else:
                kept = nodes_of(all_nodes, variant)
            description = quantize_keeping(kept, quantized)
            write_bundle(args.fp32, bundle, quantized, description)
            entry["kept_float"] = kept
            entry["matmul_integer"] = description["ops"].get("MatMulInteger", 0)
        classifier = Classifier(bundle, threads=1)
        logits = classifier.logits(data.dev.text, data.dev.text_pair, batch_size=1)
        entry["dev"] = compute_metrics(data.task, logits, data.dev.labels)
        entry["seconds"] = round(time.time() - started, 1)
        results[variant] = entry
        results_file.write_text(json.dumps(results, indent=1))
        print(variant, entry["dev"], f"{entry['seconds']} s", flush=True)

    metric = manifest["task"]["metrics"][0]
    fp32 = results.get("fp32", {}).get("dev", {}).get(metric)
    lines = [f"# int8 with nodes left in float: {manifest['task']['name']} ({args.fp32})", "",
             f"Dev {metric}, scored one example at a time; preset {preset}.", "",
             f"| variant | nodes in float | MatMulInteger | {metric} | of fp32 |", "|---|---:|---:|---:|---:|"]
    for variant in variants:
        if variant not in results:
            continue
        r = results[variant]
        value = r["dev"][metric]
        share = f"{value / fp32:.3f}" if fp32 else "–"
        lines.append(f"| {variant} | {len(r.get('kept_float', [])) if variant != 'fp32' else '–'} | "
                     f"{r.get('matmul_integer', '–')} | {value:.4f} | {share} |")
    if "auto" in results:
        lines += ["", "`auto` kept: " + (", ".join(f"`{n}`" for n in results["auto"]["kept_float"]) or "none")
                  + f"; relative error on the calibration logits {results['auto']['search']['relative_error']}, "
                  f"{results['auto']['search']['evaluations']} quantizations."]
    (args.out / "results.md").write_text("\n".join(lines) + "\n")
    shutil.rmtree(args.out / "work", ignore_errors=True)


if __name__ == "__main__":
    main()
