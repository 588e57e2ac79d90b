"""How fast the teacher labels a transfer set, and at what cost in agreement (issue 45, item 3).

`kdedge augment` spends nearly all its time in the teacher (MRPC with all-mpnet-base-v2: 2,673 of 2,695 s for 61,118
rows). This labels a sample of a transfer set's rows by each way at hand and reports rows per second and how the
logits compare with the transfer set's stored ones (PyTorch under the run's autocast):
  - torch-bf16 / torch-fp32: kdedge's own path (compute_teacher_logits: length-sorted batches of --batch-size);
  - onnx: the teacher's exported bundle through kdedge_runtime, in length-sorted batches of each of
    --onnx-batch-sizes (default: --batch-size). A dynamic int8 bundle takes its activation ranges over the whole
    padded batch, so its logits depend on the batch; at batch 1 each row has its own ranges, as in an app.

--torch picks the PyTorch ways (torch-bf16 needs a CPU with bfloat16 instructions: kdedge refuses it elsewhere).

Usage: python benchmarks/label_speed.py TEACHER_DIR TRANSFER_DIR [--bundle BUNDLE ...] [--rows 1024]
         [--batch-size 128] [--onnx-batch-sizes 1,128] [--torch torch-bf16,torch-fp32] [--threads N]
         [--out result.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch
from kdedge_runtime.cpu import cpu_identity, cpu_model


def sample(transfer: Path, rows: int, seed: int = 0):
    table = pq.read_table(sorted(transfer.glob("*.parquet"))[0]).to_pydict()
    pick = np.random.default_rng(seed).choice(len(table["text"]), size=min(rows, len(table["text"])), replace=False)
    pairs = table.get("text_pair")
    return ([table["text"][i] for i in pick], [pairs[i] for i in pick] if pairs and pairs[0] is not None else None,
            np.asarray([table["logits"][i] for i in pick], dtype=np.float32))


def compare(logits: np.ndarray, stored: np.ndarray) -> dict:
    return {"argmax_agreement": float((logits.argmax(-1) == stored.argmax(-1)).mean()),
            "max_abs_logit_diff": float(np.abs(logits - stored).max()),
            "mean_abs_logit_diff": float(np.abs(logits - stored).mean())}


def torch_labeller(teacher_dir: Path, texts, pairs, precision: str, batch_size: int):
    """Loaded (not timed), then a call that labels the rows (timed)."""
    from kdedge.data.loaders import Split
    from kdedge.data.tasks import get_glue_task
    from kdedge.models.teacher import load_teacher
    from kdedge.models.teacher_cache import compute_teacher_logits
    from kdedge.training import make_accelerator

    manifest = json.loads((teacher_dir / "manifest.json").read_text())
    teacher, tokenizer = load_teacher(str(teacher_dir), get_glue_task(manifest["task"]["name"]))
    split = Split(text=texts, labels=np.zeros(len(texts)), text_pair=pairs)
    accelerator = make_accelerator(precision)
    return lambda: compute_teacher_logits(teacher, tokenizer, split, max_length=128, batch_size=batch_size,
                                          accelerator=accelerator)


def onnx_labeller(bundle: Path, texts, pairs, batch_size: int, threads: int | None):
    from kdedge_runtime import Classifier

    classifier = Classifier(bundle, threads=threads)
    return lambda: classifier.logits(texts, pairs, batch_size=batch_size)


TORCH_WAYS = {"torch-bf16": "bf16", "torch-fp32": "no"}


def measure(way: str, args) -> dict:
    """One way: "torch-bf16", "torch-fp32" or "onnx:BUNDLE@BATCH"."""
    texts, pairs, stored = sample(args.transfer, args.rows)
    batch_size, name = args.batch_size, way
    if way.startswith("onnx:"):
        bundle, batch = way[5:].rsplit("@", 1)
        batch_size, name = int(batch), f"onnx:{Path(bundle).name}"
        label = onnx_labeller(Path(bundle), texts, pairs, batch_size, args.threads)
    else:
        label = torch_labeller(args.teacher, texts, pairs, TORCH_WAYS[way], batch_size)
    t0 = time.perf_counter()
    logits = np.asarray(label())
    seconds = time.perf_counter() - t0
    return {"way": name, "batch_size": batch_size, "rows": len(texts), "seconds": round(seconds, 2),
            "rows_per_s": round(len(texts) / seconds, 1), **compare(logits, stored)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("teacher", type=Path)
    parser.add_argument("transfer", type=Path)
    parser.add_argument("--bundle", type=Path, action="append", default=[])
    parser.add_argument("--rows", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--onnx-batch-sizes", help="comma-separated; default: --batch-size")
    parser.add_argument("--torch", default=",".join(TORCH_WAYS), help="comma-separated PyTorch ways, or none")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # one way, in this process (accelerate's state is global)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.one:
        print(json.dumps(measure(args.one, args)))
        return
    rows = []
    torch_ways = [w for w in args.torch.split(",") if w and w != "none"]
    unknown = sorted(set(torch_ways) - set(TORCH_WAYS))
    if unknown:
        parser.error(f"--torch: unknown {', '.join(unknown)}; known: {', '.join(TORCH_WAYS)}, none")
    onnx_batches = (args.onnx_batch_sizes or str(args.batch_size)).split(",")
    if not all(b.isdigit() and int(b) > 0 for b in onnx_batches):
        parser.error(f"--onnx-batch-sizes: positive whole numbers separated by commas, not {args.onnx_batch_sizes!r}")
    for way in [*torch_ways, *(f"onnx:{b}@{n}" for b in args.bundle for n in onnx_batches)]:
        out = subprocess.run([sys.executable, *sys.argv, "--one", way], capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    if args.out:
        args.out.write_text(json.dumps({"command": " ".join(["python", *sys.argv]), "cpu": f"{cpu_model()}, "
                                        f"{cpu_identity()}", "threads": args.threads, "batch_size": args.batch_size,
                                        "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
