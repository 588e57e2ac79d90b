#!/usr/bin/env bash
# Issue 46: build the folder that travels to the GPU machine with benchmarks/gpu/run.sh (the device call names it in
# `carry`; .gitignore keeps it out of git). Run here, on the CPU machine, with the project's venv active:
#   bash benchmarks/gpu/prepare.sh            # -> benchmarks/gpu/carry, for run.sh
#   bash benchmarks/gpu/prepare.sh benchmarks/gpu/carry --imdb   # for fast_end.sh: the IMDB halves too
# It holds (benchmarks/gpu/prepare.py says why each is exact):
#   teacher-base/  all-MiniLM-L6-v2 in float16 (~44 MiB), its config and tokenizer
#   data.tar.xz    SST-2 train.tsv and dev.tsv
#   vectors.npz    GloVe vectors (float16) of SST-2's 10,000 most frequent words, for the BiLSTM
#   wheels/        what kdedge imports on run.sh's path that the device image lacks (its Python 3.12): datasketch
#                  (the transfer set's near-duplicate filter). The image has torch, transformers, accelerate, onnx,
#                  onnxruntime (CPU), tokenizers, safetensors, pyarrow, pandas, click, pyyaml, tqdm, scipy,
#                  scikit-learn and matplotlib; datasets, optimum and optuna are imported only where they are used
#                  (hub datasets, the optimum exporter, kdedge tune), none of which run.sh reaches.
# It fails if the working tree that travels plus this folder exceed LIMIT_MIB (60; the device tool's bound is 64).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
. scripts/offline-env.sh
CARRY=${1:-benchmarks/gpu/carry}
LIMIT_MIB=${LIMIT_MIB:-60}
PY=${PYTHON:-python}

"$PY" benchmarks/gpu/prepare.py build "$CARRY" "${@:2}"

# wheels for the device's Python 3.12 (the device tool's README), the versions this venv runs
rm -rf "$CARRY/wheels"
mkdir -p "$CARRY/wheels"
for package in datasketch; do
  version=$("$PY" -c "from importlib.metadata import version; print(version('$package'))")
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d "$CARRY/wheels" "$package==$version"
done

# what travels: tracked files and untracked ones git does not ignore (the device tool's rule), plus this folder
"$PY" - "$CARRY" "$LIMIT_MIB" <<'PY'
import os
import subprocess
import sys
from pathlib import Path

carry, limit = Path(sys.argv[1]), float(sys.argv[2])
listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], check=True,
                        capture_output=True).stdout.decode().split("\0")
tree = sum(os.path.getsize(p) for p in set(listed) if p and os.path.isfile(p) and not os.path.islink(p))
folder = sum(p.stat().st_size for p in carry.rglob("*") if p.is_file())
parts = {p.name: sum(q.stat().st_size for q in ([p] if p.is_file() else p.rglob("*")) if q.is_file())
         for p in sorted(carry.iterdir())}
mib = 2 ** 20
print(f"working tree {tree / mib:.1f} MiB + {carry} {folder / mib:.1f} MiB "
      f"({', '.join(f'{k} {v / mib:.1f}' for k, v in parts.items())}) = {(tree + folder) / mib:.1f} MiB "
      f"(bound {limit:g} MiB)")
if tree + folder > limit * mib:
    sys.exit(f"too large to travel: {(tree + folder) / mib:.1f} MiB > {limit:g} MiB; shrink the working tree "
             "(untracked files count) or the carried folder")
PY
