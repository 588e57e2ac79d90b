"""Training-step time of a teacher on this CPU in fp32 and under bfloat16 autocast (issue 45: what bf16 saves).

Times `--steps` AdamW steps (forward, backward, update) of a sequence classifier on random token batches of
`--batch` x `--length`, after one untimed step each, in fp32 and under `torch.autocast("cpu", torch.bfloat16)`, the
autocast `kdedge teacher --mixed-precision bf16` trains with (fp32 master weights). Refuses bf16 on a CPU without
bfloat16 instructions, as kdedge does. Writes results.json and report.md under --out.

Usage: python benchmarks/bf16_speed.py MODEL --out benchmarks/results/bf16_speed [--steps 4 --batch 16 --length 64]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification

from kdedge_runtime.cpu import describe, native_bf16, read_cpu


def time_steps(model, precision: str, steps: int, batch: int, length: int) -> list[float]:
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(5, model.config.vocab_size - 1, (batch, length), generator=generator)
    labels = torch.randint(0, model.config.num_labels, (batch,), generator=generator)
    times = []
    for step in range(steps + 1):  # the first step warms up (allocations, kernel choice)
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step:
            times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--length", type=int, default=64)
    args = parser.parse_args()
    machine, flags = read_cpu()
    if not native_bf16(flags):
        raise SystemExit(f"this CPU ({machine}) has no bfloat16 instructions: bf16 autocast would be emulated")
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(args.model, num_labels=2)
    rows = {p: time_steps(model, p, args.steps, args.batch, args.length) for p in ("fp32", "bf16")}
    summary = {p: {"median_s": round(statistics.median(t), 3), "steps_s": [round(x, 3) for x in t]}
               for p, t in rows.items()}
    result = {"model": args.model, "batch": args.batch, "length": args.length, "threads": torch.get_num_threads(),
              "cpu": describe(), "torch": torch.__version__, "steps": summary,
              "speedup_bf16": round(summary["fp32"]["median_s"] / summary["bf16"]["median_s"], 2)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    cpu = result["cpu"]
    lines = [f"# Training step, fp32 vs bf16 autocast: {args.model}", "",
             f"CPU: {cpu.get('model')} ({cpu.get('identity', '')}), {result['threads']} threads, torch {torch.__version__}. "
             f"Batch {args.batch} x {args.length} tokens, AdamW, {args.steps} timed steps after one untimed.", "",
             "| precision | median s/step | steps |", "|---|---:|---|"]
    lines += [f"| {p} | {s['median_s']} | {', '.join(map(str, s['steps_s']))} |" for p, s in summary.items()]
    lines += ["", f"bf16 autocast: **{result['speedup_bf16']}x** the fp32 step rate.", "",
              f"Command: `python {' '.join(sys.argv)}`"]
    (args.out / "report.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
