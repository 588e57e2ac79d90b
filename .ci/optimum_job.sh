#!/usr/bin/env bash
# CI's second job: the other supported stack, transformers 4.57 with optimum-onnx (kdedge[optimum]), in its own
# fresh venv, after the README's commands (it reuses the quickstart's teacher): the export, TinyBERT, compression
# and runtime tests, then a `kdedge bench` that exports that teacher through optimum's exporter.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv-optimum
. .venv-optimum/bin/activate
pip install -q -e ".[dev,optimum]"
python - <<'PY'
import importlib.metadata as md
assert md.version("transformers").startswith("4.57"), md.version("transformers")
print("transformers", md.version("transformers"), "optimum-onnx", md.version("optimum-onnx"))
PY
python -m pytest -q tests/test_export.py tests/test_tinybert.py tests/test_compress.py tests/test_runtime.py
. scripts/offline-env.sh
cache=$(mktemp -d)
KDEDGE_CACHE_DIR=$cache kdedge bench --teacher runs/quickstart/teacher --bundle runs/quickstart/bundle-int8 \
  --backends ort-cpu --batch-sizes 1 --seq-lens 16 --out runs/quickstart/bench-optimum --overwrite > /dev/null
python - "$cache" <<'PY'
import json, sys
from pathlib import Path
manifests = sorted(Path(sys.argv[1]).rglob("manifest.json"))
exporters = {json.loads(m.read_text())["transforms"]["exporter"] for m in manifests}
assert len(manifests) == 2 and exporters == {"optimum"}, (manifests, exporters)
print("the teacher's fp32 and int8 bundles were exported by optimum's exporter")
PY
rm -rf "$cache"
