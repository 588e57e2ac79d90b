#!/bin/bash
# round 9's measurement: its nine bundles (three levers, three seeds) beside round 8's (the control: the same set and
# recipe without the lever) and fastText, one process, one thread, the machine otherwise idle
set -e
cd "$(dirname "$0")/../../.."
B=benchmarks/runs/sst2/fast-end-bundles R=benchmarks/results/sst2_fast_end_r9 args=""
for s in 42 43 44; do
  for r in ngram-long-e4-negbut ngram-long-e5-negbut ngram-long-e4-negbut-gold2 ngram-long-e4-negbut-d40; do
    args="$args --bundle $B/$r-imdb-v8-both-s$s-int8"
  done
done
D="--train ../shared/data/glue/SST-2/train.tsv --dev ../shared/data/glue/SST-2/dev.tsv --ood benchmarks/runs/sst2/imdb/eval.tsv"
# shellcheck disable=SC2086  # the arguments are words
.venv-peers/bin/python benchmarks/peers.py $D $args --peers fasttext --seeds 42,43,44 --out $R/rows.json > $R/peers.log 2>&1
.venv/bin/python benchmarks/collect_fast_end.py $R/rows.json $R
# then Node (export/node's packages installed from this tree): predict() of one text against the model's run, the
# round's chosen recipe and round 8's control, twice
B=$(realpath $B) dev=$(realpath ../shared/data/glue/SST-2/dev.tsv)
for run in 1 2; do
  echo "== run $run"
  (cd export/node && node tools/overhead.js --data "$dev" --seconds 4 --threads 1 \
    "$B"/ngram-long-e5-negbut-imdb-v8-both-s4{2,3,4}-int8 "$B/ngram-long-e4-negbut-imdb-v8-both-s42-int8")
done | tee $R/node_overhead.txt
