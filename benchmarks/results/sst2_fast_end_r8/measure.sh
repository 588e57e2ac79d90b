#!/bin/bash
# round 8's measurement: its three bundles beside round 7's (sentences) and round 6's -negbut (reviews whole, the
# control) and fastText, one process; then round 6's -negbut again through the runtime before this session's change
# (git 2748cff, its extensions built in /tmp/old), fastText beside it, in the same pause
set -e
cd /work/main
B=benchmarks/runs/sst2/fast-end-bundles; R=benchmarks/results/sst2_fast_end_r8; args="" control=""
for s in 42 43 44; do
  args="$args --bundle $B/ngram-long-e4-negbut-imdb-v8-s$s-int8 --bundle $B/ngram-long-e4-negbut-imdb-v8-sent-s$s-int8 --bundle $B/ngram-long-e4-negbut-imdb-v8-both-s$s-int8"
  control="$control --bundle $B/ngram-long-e4-negbut-imdb-v8-s$s-int8"
done
D="--train /work/shared/data/glue/SST-2/train.tsv --dev /work/shared/data/glue/SST-2/dev.tsv --ood benchmarks/runs/sst2/imdb/eval.tsv"
.venv-peers/bin/python benchmarks/peers.py $D $args --peers fasttext --seeds 42,43,44 --out $R/rows.json > $R/peers.log 2>&1
PYTHONPATH=/tmp/old/export/python .venv-peers/bin/python benchmarks/peers.py $D $control --peers fasttext --seeds 42,43,44 --out $R/before/rows.json > $R/before/peers.log 2>&1
.venv/bin/python benchmarks/collect_fast_end.py $R/rows.json $R
.venv/bin/python benchmarks/collect_fast_end.py $R/before/rows.json $R/before
