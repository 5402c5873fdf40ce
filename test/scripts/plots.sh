#!/usr/bin/env bash
# scripts/strata_plots.py renders each of its plots from real program output: training curves
# (drug_response --metrics-out), predictions with their calibration (drug_response predict
# --mc-passes), the pre-filter table (docking_surrogate evaluate-prefilter --out), the transfer
# table (transfer_drug_response --out) and learning curves (learning_curve --out). Exit 77
# (skipped) without matplotlib.
#   usage: plots.sh <python3> <scripts directory> <drug_response> <docking_surrogate>
#                   <transfer_drug_response> <learning_curve> <scratch directory>
set -euo pipefail
python=$1 scripts=$2 drug_response=$3 docking=$4 transfer=$5 learning_curve=$6 work=$7
"$python" -c "import matplotlib" 2> /dev/null || { echo "SKIPPED: python3-matplotlib is not installed"; exit 77; }
rm -rf "$work" && mkdir -p "$work" && cd "$work"
fail() { echo "FAIL: $*"; exit 1; }
is_png() { [[ -s "$1" && $(head -c 8 "$1" | od -An -tx1 | tr -d ' \n') == "89504e470d0a1a0a" ]]; }

"$drug_response" --cells 20 --drugs 30 --cell-width 40 --drug-width 30 --tuples 3000 --epochs 3 --width 32 --warmup-steps 0 \
  --train-samples 0 --validation-samples 0 --metrics-out metrics.csv --model-out m.model --write-held-out held > /dev/null
"$drug_response" predict --model m.model --data-dir held --mc-passes 8 --out predictions.csv > /dev/null
"$docking" train --synthetic 2000 --epochs 2 --model-out fp.model > /dev/null
"$docking" evaluate-prefilter --model fp.model --library-size 20000 --out prefilter.csv > /dev/null 2>&1
"$transfer" --quick --threads 1 --out transfer > /dev/null
"$learning_curve" --quick --threads 1 --out curve > /dev/null

"$python" "$scripts/strata_plots.py" curves metrics.csv --out curves.png
"$python" "$scripts/strata_plots.py" predictions predictions.csv --out predictions.png
"$python" "$scripts/strata_plots.py" prefilter prefilter.csv --out prefilter.png
"$python" "$scripts/strata_plots.py" transfer transfer.csv --out transfer.png
"$python" "$scripts/strata_plots.py" learning-curve curve.csv --out learning_curve.png
for png in curves.png predictions.png prefilter.png transfer.png learning_curve.png; do is_png "$png" || fail "$png is not a PNG image"; done
"$python" "$scripts/strata_plots.py" curves missing.csv --out x.png 2> err && fail "a missing file was plotted"
grep -q "strata_plots: error:" err || fail "a missing file: $(cat err)"
echo PASS
