#!/usr/bin/env bash
# Issue #49: the fast end of the SST-2 frontier, with the tools users pick instead in the same measurement.
#   - the teacher (configs/sst2-teacher.yaml) and the frontier's transfer set (all of SST-2 train plus 2 word-replaced
#     and 2 rule-based variants a sentence), as sst2_frontier.sh builds them (shared with it in RUN_DIR);
#   - kdedge's fast students (ONLY, recipes of sst2_recipes.sh), three seeds, int8 bundles: the n-gram student
#     (fastText's architecture with one hidden layer, distilled), the same without the hidden layer (ngram-linear:
#     fastText's own read-out), the GloVe BiLSTM and the pruned 2L-128 (FFN 256, --optimize);
#   - the peers (benchmarks/peers.py in its own venv, benchmarks/peers-requirements.txt): fastText and Model2Vec,
#     each trained on SST-2's labelled rows and on the same transfer set with the teacher's labels, three seeds;
#   - every row measured in one process per row set, one thread: SST-2 dev accuracy, IMDB-2k accuracy (out of
#     domain), size on disk, and the time an app sees per call (text in, label out, tokenization included; for
#     bundles the model's own run too), then summary.json/summary.md/frontier.png and the issue's targets from
#     benchmarks/collect_fast_end.py.
# IMDB_HALF=1 is the user's case with unlabelled text from where the model will run, as sst2_to_imdb.sh builds it
# (and shares with it): the IMDB sample split into 1,000 unlabelled reviews and 1,000 held out, the students and
# fastText (transfer) trained on the SST-2 set plus those reviews labelled by the teacher (students named
# <recipe>-imdb-s<seed>), and every row's IMDB accuracy read on the held-out half. Use another RES for it.
# LABEL_LENGTH (with IMDB_HALF=1; default 128) is the teacher's max length, in its tokens, when it labels set (b):
# 512 reads most of a review where 128 reads its first hundred words or so (set transfer-l512, students
# <recipe>-imdb512-s<seed>; the n-gram student's own cap counts words and fits any). Use another RES for it.
# VARIANTS (with IMDB_HALF=1; default 2) is how many word-replaced and how many rule-based variants set (b) takes a
# sentence (and a review): 8 makes a set about three times as large (set transfer-v8, students <recipe>-imdb-v8-s<seed>).
# UNLABELED_SENTENCES=1 (with IMDB_HALF=1) splits the unlabelled reviews into sentences before they join set (b)
# (benchmarks/split_sentences.py; set <name>-sent, students <recipe>-imdb...-sent-s<seed>): SST-2's unit of text;
# UNLABELED_SENTENCES=both takes the sentences and the whole reviews (set <name>-both, students <recipe>-imdb...-both-s<seed>).
# FROM_GPU=DIR (with IMDB_HALF=1) takes the stages up to the bundles from the files benchmarks/gpu/fast_end.sh brought
# back from a GPU (the device tool's folder): set (b), the teacher's and the students' int8 bundles, its logs (in
# RES/gpu); only the peers and the measurement run here.
# SEEDS, ONLY and PEERS narrow the run; every stage is cached in RUN_DIR and resumes, peers.py resumes row by row.
# Usage: bash benchmarks/sst2_fast_end.sh [RUN_DIR]
. "$(dirname "$0")/lib.sh"
{  # read whole before it runs
RUN=${1:-benchmarks/runs/sst2}
RES=${RES:-benchmarks/results/sst2_fast_end}
T=$RUN/teacher
B=$RUN/fast-end-bundles
DATA=${KDEDGE_DATA_DIR:-../shared/data/glue}
IMDB=${KDEDGE_IMDB:-$DATA/../imdb/test-2k.tsv}
PEERS_VENV=${PEERS_VENV:-.venv-peers}
PEERS=${PEERS-fasttext,model2vec}  # the peers trained and measured (peers.py --peers); empty: train and export only
read -r -a SEEDS <<< "${SEEDS:-42 43 44}"
read -r -a ONLY <<< "${ONLY:-ngram ngram-linear bilstm-glove pruned-2l-128-ffn256-long}"
case ${UNLABELED_SENTENCES:-0} in  # build_imdb_half checks it too, but only after the teacher's stage
  0 | 1 | both) ;;
  *) echo "UNLABELED_SENTENCES is 0, 1 or both, not ${UNLABELED_SENTENCES}" >&2; exit 1 ;;
esac
mkdir -p "$RES" "$B"
. benchmarks/sst2_recipes.sh  # RECIPES, EXPORT_OPTIONS, build_transfer, build_imdb_half, export_bundle, teacher_bundle

FROM_GPU=${FROM_GPU:-}
if [ -n "$FROM_GPU" ]; then
  [ "${IMDB_HALF:-0}" = 1 ] && [ "${LABEL_LENGTH:-128}" = 128 ] && [ "${VARIANTS:-2}" = 2 ] || {
    echo "FROM_GPU holds set (b) labelled at 128 tokens, 2 + 2 variants: give IMDB_HALF=1 and no LABEL_LENGTH or" \
      "VARIANTS with it" >&2; exit 1; }
  unpack_from_gpu "$FROM_GPU"
else
  stage teacher "$T" "$RES" kdedge teacher --config configs/sst2-teacher.yaml
fi
LABEL_LENGTH=${LABEL_LENGTH:-128} VARIANTS=${VARIANTS:-2}
if [ "${IMDB_HALF:-0}" = 1 ]; then  # at 128 and 2, sst2_to_imdb.sh's folder for set (b), so the two share it
  name=transfer SUFFIX=-imdb label=()
  if [ "$LABEL_LENGTH" != 128 ]; then
    name=transfer-l$LABEL_LENGTH SUFFIX=-imdb$LABEL_LENGTH label=(--max-length "$LABEL_LENGTH")
  fi
  if [ "$VARIANTS" != 2 ]; then
    name=$name-v$VARIANTS SUFFIX=$SUFFIX-v$VARIANTS label+=(--variants "$VARIANTS")
  fi
  case ${UNLABELED_SENTENCES:-0} in  # build_imdb_half reads it too
    1) name=$name-sent SUFFIX=$SUFFIX-sent ;;
    both) name=$name-both SUFFIX=$SUFFIX-both ;;
  esac
  TRANSFER=$RUN/imdb/$name STUDENTS=$RUN/imdb/students OOD=$RUN/imdb/eval.tsv
  build_imdb_half "$IMDB" "$RUN/imdb" "$RES/transfer.log" "$name" "${label[@]}"
  extra=(--eval-file "imdb=$OOD")
else
  TRANSFER=$RUN/transfer-full STUDENTS=$RUN/frontier SUFFIX= OOD=$IMDB extra=()
  build_transfer "$TRANSFER" "$RES/transfer.log"
fi
bundles=(--bundle "$(teacher_bundle "$B")")
for seed in "${SEEDS[@]}"; do
  for name in "${ONLY[@]}"; do
    student=$name$SUFFIX-s$seed
    if [ -z "$FROM_GPU" ]; then
      # shellcheck disable=SC2086  # the recipe's options are words
      stage "$student" "$STUDENTS/$student" "$RES" kdedge distill --teacher "$T" \
        --transfer "$TRANSFER" --seed "$seed" "${extra[@]}" ${RECIPES[$name]}
      # shellcheck disable=SC2086
      export_bundle "$STUDENTS/$student" "$B" int8 ${EXPORT_OPTIONS[$name]:-}
    elif [ ! -f "$B/$student-int8/manifest.json" ]; then
      echo "$FROM_GPU has no bundle $student-int8 (ONLY and SEEDS as the GPU run had them)" >&2; exit 1
    fi
    bundles+=(--bundle "$B/$student-int8")
  done
done

[ -n "$PEERS" ] || exit 0  # PEERS empty: train and export only
if [ ! -x "$PEERS_VENV/bin/python" ]; then
  python -m venv "$PEERS_VENV"
  "$PEERS_VENV/bin/pip" install -q -r benchmarks/peers-requirements.txt
fi
# the bundles are timed through this checkout's runtime, whatever an older venv installed
"$PEERS_VENV/bin/pip" install -q --no-deps -e ./export/python
"$PEERS_VENV/bin/python" benchmarks/peers.py --train "$DATA/SST-2/train.tsv" --dev "$DATA/SST-2/dev.tsv" \
  --ood "$OOD" --transfer "$TRANSFER" "${bundles[@]}" --peers "$PEERS" --seeds "$(IFS=,; echo "${SEEDS[*]}")" --out "$RES/rows.json" \
  2>&1 | without_progress > "$RES/peers.log"
kdedge doctor > "$RES/doctor.txt"
python benchmarks/collect_fast_end.py "$RES/rows.json" "$RES"
cat "$RES/summary.md"
exit
}
