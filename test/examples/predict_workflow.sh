#!/usr/bin/env bash
# drug_response's model file as a user meets it: train on CANDLE files (synthetic data written
# as such), predict a file with Monte-Carlo dropout and with an ensemble, predict a plain tuple
# file without responses, survive reordered table columns, and get clear errors for missing or
# unknown columns, unknown ids and a checkpoint given as a model. With an .npz build and Debian's
# python3 + numpy, the exported model predicts the same in NumPy (and PyTorch, when installed)
# from the raw tables.
#   usage: predict_workflow.sh <drug_response> <scratch directory> [<python3> <scripts directory>]
set -euo pipefail
program=$1
work=$2
python=${3:-}
scripts=${4:-}
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$work" && mkdir -p "$work" && cd "$work"
fail() { echo "FAIL: $*"; exit 1; }
column() { awk -F, -v name="$1" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == name) c = i; next } { print $c }' "$2"; }

"$program" --write-candle data --cells 20 --drugs 30 --cell-width 50 --drug-width 40 --tuples 3000 > /dev/null
train=(--data-dir data --epochs 2 --width 32 --train-samples 0 --validation-samples 0)
"$program" "${train[@]}" --checkpoint run.ckpt --write-held-out held > train.log
[[ -s run.ckpt.model ]] || fail "no model file beside the checkpoint"
grep -q "^model: run.ckpt.model" train.log || fail "training did not name the model file"
# A plain pass over the held-out tuples gives training's last validation figures.
"$program" predict --model run.ckpt.model --data-dir held --out held.csv > held.log
trained=$(sed -nE 's/^summary: validation R2 ([-0-9.e]+),.*/\1/p' train.log)
predicted=$(sed -nE 's/^metrics: .*R2 ([-0-9.e]+),.*/\1/p' held.log)
awk -v a="$trained" -v b="$predicted" 'BEGIN { d = a - b; exit !(a != "" && b != "" && d < 1e-3 && d > -1e-3) }' ||
  fail "held-out R2 $predicted differs from training's validation R2 $trained"
"$program" "${train[@]}" --seed 2 --model-out second.model > /dev/null

# Low precision (where the build has oneDNN and the CPU the instructions): int8 uses the input
# ranges training stored in the model file, and both keep the fp32 predictions' order.
for precision in bf16 int8; do
  if ! "$program" predict --model run.ckpt.model --data-dir held --precision $precision --out held_$precision.csv \
      > held_$precision.log 2>&1; then
    grep -q 'needs oneDNN' held_$precision.log || fail "--precision $precision: $(tail -1 held_$precision.log)"
    continue
  fi
  grep -q "scoring in fp32" held_$precision.log && continue
  grep -q "^precision: $precision (oneDNN)" held_$precision.log || fail "--precision $precision said nothing"
  [[ $precision == bf16 ]] || grep -q "calibration from the model file" held_$precision.log ||
    fail "int8 did not use the model file's calibration: $(grep '^precision' held_$precision.log)"
  paste -d, held.csv held_$precision.csv | awk -F, 'NR > 1 { x = $5; y = $10; n++; sx += x; sy += y; sxx += x * x;
    syy += y * y; sxy += x * y } END { r = (n * sxy - sx * sy) / sqrt((n * sxx - sx * sx) * (n * syy - sy * sy)); exit !(r > 0.995) }' ||
    fail "--precision $precision predictions correlate poorly with fp32's"
done

# Monte-Carlo dropout: a row per tuple, min <= mean <= max, a spread, metrics and calibration.
"$program" predict --model run.ckpt.model --data-dir data --mc-passes 20 --out mc.csv > mc.log
[[ $(head -1 mc.csv) == "cell,drug1,drug2,response,prediction_mean,prediction_std,prediction_min,prediction_max" ]] ||
  fail "MC header: $(head -1 mc.csv)"
[[ $(wc -l < mc.csv) -eq 3001 ]] || fail "MC predicted $(($(wc -l < mc.csv) - 1)) of 3000 tuples"
awk -F, 'NR > 1 && !($7 <= $5 && $5 <= $8 && $6 >= 0) { bad = 1 } NR > 1 && $6 > 0 { spread = 1 }
         END { exit bad || !spread }' mc.csv || fail "MC rows break min <= mean <= max, or no spread"
grep -q "^metrics: MSE " mc.log || fail "no metrics printed: $(cat mc.log)"
grep -q "^calibration: .* within mean +- 1.96 std" mc.log || fail "no calibration printed"
# The masks depend on the sample, not on the batch: any batch size gives the same spread (to
# rounding: a GEMM over 7 columns adds in another order than one over 3000).
"$program" predict --model run.ckpt.model --data-dir data --mc-passes 20 --batch 7 --out mc7.csv > /dev/null
paste -d, mc.csv mc7.csv | awk -F, 'NR > 1 { for (i = 5; i <= 8; i++) { d = $i - $(i + 8); if (d < 0) d = -d;
  if (d > 1e-5) bad = 1 } } END { exit bad }' || fail "Monte-Carlo predictions depend on the batch size"

# Ensemble of two: every member's prediction, their mean.
"$program" predict --ensemble run.ckpt.model,second.model --data-dir data --all-passes --out ens.csv > ens.log
[[ $(head -1 ens.csv) == *",prediction_mean,prediction_std,prediction_min,prediction_max,prediction_1,prediction_2" ]] ||
  fail "ensemble header: $(head -1 ens.csv)"
awk -F, 'NR > 1 { d = $5 - ($9 + $10) / 2; if (d < 0) d = -d; if (d > 1e-6) bad = 1 } END { exit bad }' ens.csv ||
  fail "the ensemble mean is not the mean of its members"

# One plain pass over a plain tuple file without responses: the same predictions, no metrics.
"$program" predict --model run.ckpt.model --data-dir data --out plain.csv > /dev/null
cut -d, -f1-3 plain.csv > tuples.csv
"$program" predict --model run.ckpt.model --cell-file data/cell_expression.tsv --drug-file data/drug_descriptors.tsv \
  --tuples tuples.csv --out from_tuples.csv > tuples.log
[[ $(head -1 from_tuples.csv) == "cell,drug1,drug2,prediction" ]] || fail "tuple-file header: $(head -1 from_tuples.csv)"
diff <(column prediction plain.csv) <(column prediction from_tuples.csv) > /dev/null || fail "tuple file predicts differently"
grep -q "^metrics:" tuples.log && fail "metrics printed without responses"

# Reordered columns are matched by name; a missing or an unknown column is named.
awk -F'\t' -v OFS='\t' '{ t = $2; $2 = $3; $3 = t; print }' data/cell_expression.tsv > reordered.tsv
"$program" predict --model run.ckpt.model --cell-file reordered.tsv --drug-file data/drug_descriptors.tsv \
  --tuples tuples.csv --out reordered.csv > /dev/null
cmp -s from_tuples.csv reordered.csv || fail "reordered cell columns change the predictions"
second=$(head -1 data/cell_expression.tsv | cut -f3)
cut -f1,2,4- data/cell_expression.tsv > missing.tsv
"$program" predict --model run.ckpt.model --cell-file missing.tsv --drug-file data/drug_descriptors.tsv \
  --tuples tuples.csv --out x.csv > /dev/null 2> err1 && fail "a cell table without a column was accepted"
grep -q "the cell table does not have the columns the model was trained on: missing 1 ('$second')" err1 ||
  fail "missing column: $(cat err1)"
paste data/drug_descriptors.tsv <(echo extra_column; tail -n +2 data/drug_descriptors.tsv | sed 's/.*/1/') > extra.tsv
"$program" predict --model run.ckpt.model --cell-file data/cell_expression.tsv --drug-file extra.tsv \
  --tuples tuples.csv --out x.csv > /dev/null 2> err2 && fail "a drug table with an unknown column was accepted"
grep -q "unknown 1 ('extra_column')" err2 || fail "unknown column: $(cat err2)"

# Unknown ids stop the run and leave no output, unless skipped; a checkpoint is not a model file.
{ cat tuples.csv; echo "NCI60.NOPE,$(sed -n 2p tuples.csv | cut -d, -f2-3)"; } > unknown.csv
"$program" predict --model run.ckpt.model --cell-file data/cell_expression.tsv --drug-file data/drug_descriptors.tsv \
  --tuples unknown.csv --out unknown_out.csv > /dev/null 2> err3 && fail "an unknown cell id was accepted"
grep -q "cell 'NCI60.NOPE'" err3 || fail "unknown id: $(cat err3)"
[[ ! -e unknown_out.csv ]] || fail "a failed prediction left an output file"
"$program" predict --model run.ckpt.model --cell-file data/cell_expression.tsv --drug-file data/drug_descriptors.tsv \
  --tuples unknown.csv --out unknown_out.csv --skip-unknown-ids > skip.log
[[ $(wc -l < unknown_out.csv) -eq 3001 ]] || fail "--skip-unknown-ids kept $(($(wc -l < unknown_out.csv) - 1)) tuples"
"$program" predict --model run.ckpt --data-dir data --out x.csv > /dev/null 2> err4 && fail "a checkpoint was accepted"
grep -q "has no 'kind' entry: it is not a model file" err4 || fail "checkpoint as model: $(cat err4)"

# The exported model predicts the same outside Strata, from the raw tables: in NumPy, PyTorch
# (when installed) and as ONNX (checked by ONNX's checker, run by test/graph/onnx_eval.py).
if [[ -n "$python" ]]; then
  onnx_file=exported.onnx  # (a build without ONNX support says so; then NumPy and PyTorch only)
  "$program" export --model run.ckpt.model --npz exported.npz --onnx "$onnx_file" > /dev/null 2>&1 ||
    { onnx_file=""; "$program" export --model run.ckpt.model --npz exported.npz > /dev/null; }
  "$python" - "$scripts" "$here" "$onnx_file" <<'EOF' || fail "the exported model predicts differently outside Strata"
import csv, sys
sys.path[:0] = [sys.argv[1], sys.argv[2], sys.argv[2] + "/../graph"]
import numpy as np
import strata_numpy, exported_check
rows = list(csv.DictReader(open("plain.csv")))
x = strata_numpy.combo_inputs("exported.json", "data/cell_expression.tsv", "data/drug_descriptors.tsv",
                              [(r["cell"], r["drug1"], r["drug2"]) for r in rows])
want = np.array([float(r["prediction"]) for r in rows])
sys.exit(0 if exported_check.agrees("exported.json", "exported.npz", sys.argv[3], x, want) else 1)
EOF
fi
echo PASS
