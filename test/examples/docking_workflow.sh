#!/usr/bin/env bash
# The docking surrogate workflow as a user runs it: train a fingerprint model on synthetic
# molecules, screen a library for the top k, tabulate the pre-filter, and get clear errors for a
# missing model, a file that is not a model, and an unknown command; a model trained on a feature
# table, exported, predicts the same in NumPy, PyTorch and ONNX (when python3 and those are here).
#   usage: docking_workflow.sh <path to docking_surrogate> <scratch directory> [<python3> <scripts directory>]
set -euo pipefail
program=$1
work=$2
python=${3:-}
scripts=${4:-}
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$work" && mkdir -p "$work"
fail() { echo "FAIL: $*"; exit 1; }

"$program" train --synthetic 3000 --epochs 4 --model-out "$work/fp.model" > "$work/train.log"
grep -q '^validation: R2 ' "$work/train.log" || fail "train printed no validation figures"
r2=$(sed -nE 's/^validation: R2 ([-0-9.e]+),.*/\1/p' "$work/train.log")
awk -v r="$r2" 'BEGIN { exit !(r > 0.5) }' || fail "validation R2 $r2 <= 0.5 after 4 epochs"

"$program" screen --model "$work/fp.model" --library-size 50000 --top-k 20 --out "$work/top.csv" > "$work/screen.log" 2>&1
[[ $(head -1 "$work/top.csv") == "id,predicted_reg" ]] || fail "screen CSV header"
[[ $(wc -l < "$work/top.csv") -eq 21 ]] || fail "screen kept $(($(wc -l < "$work/top.csv") - 1)) molecules, not 20"
# Best first.
sort -t, -k2,2 -g -r -c <(tail -n +2 "$work/top.csv") || fail "screen output is not sorted best first"

# Low precision: bf16 and int8 on oneDNN keep nearly the same top 20 (skipped in a build without
# oneDNN, which refuses with a message; a CPU without the instructions scores in fp32 and says so).
for precision in bf16 int8; do
  if ! "$program" screen --model "$work/fp.model" --library-size 50000 --top-k 20 --precision $precision \
      --out "$work/top_$precision.csv" > "$work/screen_$precision.log" 2>&1; then
    grep -q 'needs oneDNN' "$work/screen_$precision.log" || fail "--precision $precision: $(tail -1 "$work/screen_$precision.log")"
    continue
  fi
  grep -q "precision: $precision (oneDNN)\|scoring in fp32" "$work/screen_$precision.log" || fail "--precision $precision said nothing"
  common=$(comm -12 <(tail -n +2 "$work/top.csv" | cut -d, -f1 | sort) <(tail -n +2 "$work/top_$precision.csv" | cut -d, -f1 | sort) | wc -l)
  ((common >= 16)) || fail "--precision $precision kept only $common of fp32's top 20"
  grep -q "scoring in fp32" "$work/screen_$precision.log" && continue
  [[ $precision == bf16 ]] || grep -q "calibration from the model file" "$work/screen_$precision.log" ||
    fail "int8 did not use the model file's calibration: $(grep '^precision' "$work/screen_$precision.log")"
  # The parity a user checks before trusting a precision: ranking (Spearman >= 0.999 against fp32
  # on the same molecules) and the pre-filter (the true top 0.1% kept at sigma = 1%, as in fp32
  # to one molecule of 100).
  "$program" evaluate-prefilter --model "$work/fp.model" --library-size 100000 --precision $precision \
    --out "$work/parity_$precision.csv" > "$work/parity_$precision.log" 2>&1 || fail "evaluate-prefilter --precision $precision"
  awk -F, '$1 == "0.01" { found = 1; d = $3 - $7; if (d < 0) d = -d; if (d > 0.0101 || !($9 >= 0.999)) bad = 1 }
           END { exit !found || bad }' "$work/parity_$precision.csv" ||
    fail "--precision $precision parity: $(grep -E '^ +1.000%|Spearman' "$work/parity_$precision.log")"
done
"$program" screen --model "$work/fp.model" --library-size 10 --top-k 1 --precision fp16 > /dev/null 2> "$work/err_precision" &&
  fail "an unknown precision was accepted"
grep -q "unknown --precision 'fp16'" "$work/err_precision" || fail "unclear message for an unknown precision: $(cat "$work/err_precision")"

# With uncertainty: Monte-Carlo dropout passes, or an ensemble of two, ranked by their mean.
"$program" screen --model "$work/fp.model" --library-size 20000 --top-k 10 --mc-passes 8 --out "$work/mc.csv" \
  > /dev/null 2>&1
[[ $(head -1 "$work/mc.csv") == "id,predicted_reg,predicted_std,predicted_min,predicted_max" ]] || fail "MC screen header"
awk -F, 'NR > 1 && !($4 <= $2 && $2 <= $5 && $3 > 0) { bad = 1 } END { exit bad || NR != 11 }' "$work/mc.csv" ||
  fail "MC screen rows: min <= mean <= max with a spread, 10 of them"
"$program" train --synthetic 3000 --epochs 1 --seed 2 --model-out "$work/fp2.model" > /dev/null
"$program" screen --ensemble "$work/fp.model,$work/fp2.model" --library-size 20000 --top-k 10 --out "$work/ens.csv" \
  > /dev/null 2>&1
sort -t, -k2,2 -g -r -c <(tail -n +2 "$work/ens.csv") || fail "ensemble screen is not sorted by its mean"
awk -F, 'NR > 1 && $3 > 0 { spread = 1 } END { exit !spread }' "$work/ens.csv" || fail "two models never disagree"

"$program" evaluate-prefilter --model "$work/fp.model" --library-size 50000 --out "$work/prefilter.csv" > "$work/prefilter.log" 2>&1
[[ $(wc -l < "$work/prefilter.csv") -eq 6 ]] || fail "pre-filter table should have 5 rows"
grep -q '10.000%     10.0x' "$work/prefilter.log" || fail "pre-filter table lacks the 10% row"

"$program" screen --model "$work/none.model" --library-size 10 --top-k 1 > /dev/null 2> "$work/err1" && fail "a missing model was accepted"
grep -q "cannot open '$work/none.model'" "$work/err1" || fail "missing model: $(cat "$work/err1")"
"$program" screen --model "$work/top.csv" --library-size 10 --top-k 1 > /dev/null 2> "$work/err2" && fail "a CSV was accepted as a model"
grep -q "not a Strata checkpoint" "$work/err2" || fail "not a model: $(cat "$work/err2")"
"$program" dock > /dev/null 2> "$work/err3" && fail "an unknown command was accepted"
grep -q "unknown command 'dock'" "$work/err3" || fail "unknown command: $(cat "$work/err3")"
# A feature table (id, score, 8 features): train, score every row, export, and the exported model
# predicts the same outside Strata.
awk 'BEGIN { srand(5); printf "id,score"; for (f = 1; f <= 8; f++) printf ",f%d", f; print "";
  for (i = 1; i <= 300; i++) { printf "m%d", i; s = 0; line = "";
    for (f = 1; f <= 8; f++) { v = rand() * 2 - 1; s += v * f / 8; line = line sprintf(",%.6f", v) }
    printf ",%.6f%s\n", s, line } }' > "$work/table.csv"
"$program" train --input "$work/table.csv" --feature-table --score-column score --epochs 3 --model-out "$work/table.model" \
  > /dev/null
"$program" screen --model "$work/table.model" --library "$work/table.csv" --feature-table --score-column score --top-k 300 \
  --out "$work/table_all.csv" > /dev/null 2>&1
[[ $(wc -l < "$work/table_all.csv") -eq 301 ]] || fail "the feature-table screen did not score every row"
# (A build without ONNX or .npz support says so; then only what it has is checked.)
"$program" export --model "$work/table.model" --npz "$work/table.npz" --onnx "$work/table.onnx" > /dev/null 2>&1 ||
  "$program" export --model "$work/table.model" --npz "$work/table.npz" > /dev/null 2>&1 || true
if [[ -n "$python" && -s "$work/table.npz" ]]; then
  "$python" - "$scripts" "$here" "$work" <<'EOF' || fail "the exported docking model predicts differently outside Strata"
import csv, sys
sys.path[:0] = [sys.argv[1], sys.argv[2], sys.argv[2] + "/../graph"]
import numpy as np
import exported_check
work = sys.argv[3]
rows = {r["id"]: r for r in csv.DictReader(open(f"{work}/table.csv"))}
scored = list(csv.DictReader(open(f"{work}/table_all.csv")))
x = np.array([[float(rows[s["id"]][f"f{f}"]) for f in range(1, 9)] for s in scored], dtype=np.float32)
want = np.array([float(s["predicted_reg"]) for s in scored])
ok = exported_check.agrees(f"{work}/table.json", f"{work}/table.npz", f"{work}/table.onnx", x, want)
sys.exit(0 if ok else 1)
EOF
fi

# Molecule files: a CSV of SMILES with docking scores (one invalid SMILES, one missing score).
{
  echo "TITLE,SMILES,dock"
  for k in $(seq 1 40); do echo "mol$k,$(printf 'C%.0s' $(seq 1 $k))O,-$((k % 9)).5"; done
  echo "broken,CC(,-3"
  echo "unscored,CCN,"
} > "$work/molecules.csv"
if "$program" train --input "$work/molecules.csv" --score-column dock --docking-score --epochs 2 --batch 8 \
     --model-out "$work/file.model" > "$work/file_train.log" 2>&1; then
  grep -q "40 molecules x 2048 features; 2 of 42 rows skipped (line 42: invalid SMILES 'CC('" "$work/file_train.log" ||
    fail "file training did not report the skipped rows: $(grep '^data' "$work/file_train.log")"
  "$program" screen --model "$work/file.model" --library "$work/molecules.csv" --top-k 3 --out "$work/file_top.csv" > /dev/null 2>&1
  [[ $(wc -l < "$work/file_top.csv") -eq 4 ]] || fail "file screen kept the wrong number of molecules"
  grep -q '^mol[0-9]*,' "$work/file_top.csv" || fail "file screen lost the ids"
  "$program" train --input "$work/molecules.csv" --score-column dock --strict --model-out "$work/x.model" > /dev/null 2> "$work/err4" &&
    fail "strict mode accepted an invalid SMILES"
  grep -q "molecules.csv:42: invalid SMILES 'CC('" "$work/err4" || fail "strict: $(cat "$work/err4")"
else
  grep -q "SMILES input needs RDKit" "$work/file_train.log" || fail "SMILES input failed: $(tail -3 "$work/file_train.log")"
  echo "no RDKit in this build: SMILES input reported as unavailable, as it should be"
fi
echo PASS
