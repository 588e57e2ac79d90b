# Source this to run kdedge offline against the shared data and model cache beside the checkout.
# (Online users need none of it: models and GLUE tasks then come from the hubs.)
_kd_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_kd_shared="${KDEDGE_SHARED:-$_kd_root/../shared}"
if [ -d "$_kd_shared" ]; then
  _kd_shared="$(cd "$_kd_shared" && pwd)"
  export HF_HUB_CACHE="$_kd_shared/hf-hub" HUGGINGFACE_HUB_CACHE="$_kd_shared/hf-hub" HF_HUB_OFFLINE=1
  export HF_DATASETS_OFFLINE=1 KDEDGE_DATA_DIR="$_kd_shared/data/glue"
  export KDEDGE_GLOVE="$_kd_shared/vectors/glove.6B.100d.60k.txt"
fi
unset _kd_root _kd_shared
