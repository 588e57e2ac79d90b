#!/usr/bin/env bash
# Issue #21's arm64 proof: the device bench of --preset arm64 bundles on an arm64 Python under emulation, compared
# with the same bundles on this x86 machine.
#   - an arm64 CPython 3.11 assembled from Debian's arm64 packages (unpacked, not installed), run by Debian's
#     qemu-user-static without binfmt or a chroot;
#   - the runtime's dependencies as aarch64 wheels on its path: numpy, tokenizers, onnxruntime 1.22.1 (1.32 crashes
#     with SIGSEGV at import under this qemu, see ../shared/README.md) — and nothing else: no torch, no kdedge;
#   - each student folder given exported with `--preset arm64` (int8 weights, as ARM's int8 kernels want them);
#   - `python -m kdedge_runtime.bench --one-process --with-logits` on both (a child interpreter cannot be started
#     under qemu-user without binfmt), then benchmarks/compare_devices.py: metric on each, prediction agreement and
#     the largest logit difference. Emulated latency is NOT a real arm64 figure and is reported as such.
#   - with TEACHER (the teacher folder): the teacher's int8 bundle as `kdedge bench` exports it (cached) is timed on
#     both as --teacher, and the arm64 report is merged into a host `kdedge bench` of the same bundles
#     (--device-report): RES/merged/report.md holds the host and the device:qemu-arm64 rows side by side.
# Needs root (apt-get) and the registries. Usage: [TEACHER=DIR] bash benchmarks/arm64_device_bench.sh STUDENT_DIR ...
. "$(dirname "$0")/lib.sh"
[ $# -ge 1 ] || { echo "usage: $0 STUDENT_DIR [STUDENT_DIR ...]" >&2; exit 2; }
RUN=${RUN:-benchmarks/runs/arm64}
RES=${RES:-benchmarks/results/arm64}
ROOT=$RUN/root
SITE=$RUN/site
DEV=${KDEDGE_DEV_FILE:-$KDEDGE_DATA_DIR/SST-2/dev.tsv}
mkdir -p "$RUN/debs" "$RUN/wheels" "$ROOT" "$SITE" "$RES"

command -v qemu-aarch64-static > /dev/null || apt-get install -y -q qemu-user-static
if [ ! -x "$ROOT/usr/bin/python3.11" ]; then
  dpkg --print-foreign-architectures | grep -qx arm64 || { dpkg --add-architecture arm64 && apt-get update -q; }
  packages=(python3.11-minimal libpython3.11-minimal libpython3.11-stdlib libc6 zlib1g libexpat1 libstdc++6
            libgcc-s1 libffi8 libssl3 libbz2-1.0 liblzma5)
  (cd "$RUN/debs" && apt-get download -q "${packages[@]/%/:arm64}")
  for deb in "$RUN"/debs/*.deb; do dpkg-deb -x "$deb" "$ROOT"; done
fi
if [ ! -d "$SITE/onnxruntime" ]; then
  pip download -q --only-binary=:all: --python-version 3.11 --platform manylinux_2_28_aarch64 \
    --platform manylinux2014_aarch64 --no-deps -d "$RUN/wheels" numpy tokenizers onnxruntime==1.22.1
  for wheel in "$RUN"/wheels/*.whl; do python -m zipfile -e "$wheel" "$SITE"; done
fi
ARM_PYTHON=(qemu-aarch64-static -L "$ROOT" "$ROOT/usr/bin/python3.11")
PYTHONPATH="$SITE:export/python" "${ARM_PYTHON[@]}" -c \
  "import platform, onnxruntime, numpy, tokenizers; print('arm64 python', platform.machine(), platform.python_version(), 'onnxruntime', onnxruntime.__version__, 'numpy', numpy.__version__, 'tokenizers', tokenizers.__version__)" \
  | tee "$RES/arm64-python.txt"

bundles=()
for student in "$@"; do
  out=$RUN/bundles/$(basename "$student")-int8-arm64
  [ -f "$out/manifest.json" ] || kdedge export --model "$student" --out "$out" --quantize dynamic --preset arm64 \
    2>&1 | without_progress | tail -1
  bundles+=("$out")
done

teacher=()
if [ -n "${TEACHER:-}" ]; then  # the int8 teacher kdedge bench exports and caches: the same bytes on both sides
  teacher_int8=$(python -c "
import sys
from kdedge.bench.models import teacher_bundles
from kdedge.config import BenchConfig
from kdedge.models.teacher_cache import default_cache_dir
print(teacher_bundles(sys.argv[1], BenchConfig(out='-'), default_cache_dir())[1].path)" "$TEACHER")
  teacher=(--teacher "$teacher_int8")
fi
bench=(-m kdedge_runtime.bench "${bundles[@]}" "${teacher[@]}" --data "$DEV" --with-logits --one-process --threads 1
       --warmup 3 --min-runs 20 --min-time 0 --batch-size 32)
PYTHONPATH="$SITE:export/python" "${ARM_PYTHON[@]}" "${bench[@]}" --device-name qemu-arm64 --out "$RES/arm64.json" \
  > "$RES/arm64.log"
python "${bench[@]}" --device-name x86-host --out "$RES/x86.json" > "$RES/x86.log"
python benchmarks/compare_devices.py "$RES/x86.json" "$RES/arm64.json" | tee "$RES/summary.md"
if [ -n "${TEACHER:-}" ]; then
  host_bundles=()
  for bundle in "${bundles[@]}"; do host_bundles+=(--bundle "$bundle"); done
  kdedge bench --teacher "$TEACHER" "${host_bundles[@]}" --device-report "$RES/arm64.json" --backends ort-cpu \
    --threads 1 --batch-sizes 1,32 --seq-lens 64 --out "$RES/merged" --overwrite > "$RES/merged.log"
fi
