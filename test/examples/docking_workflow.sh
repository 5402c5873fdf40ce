#!/usr/bin/env bash
# The docking surrogate workflow as a user runs it: train a fingerprint model on synthetic
# molecules, screen a library for the top k, tabulate the pre-filter, and get clear errors for a
# missing model, a file that is not a model, and an unknown command.
#   usage: docking_workflow.sh <path to docking_surrogate> <scratch directory>
set -euo pipefail
program=$1
work=$2
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

"$program" evaluate-prefilter --model "$work/fp.model" --library-size 50000 --out "$work/prefilter.csv" > "$work/prefilter.log" 2>&1
[[ $(wc -l < "$work/prefilter.csv") -eq 6 ]] || fail "pre-filter table should have 5 rows"
grep -q '10.000%     10.0x' "$work/prefilter.log" || fail "pre-filter table lacks the 10% row"

"$program" screen --model "$work/none.model" --library-size 10 --top-k 1 > /dev/null 2> "$work/err1" && fail "a missing model was accepted"
grep -q "cannot open '$work/none.model'" "$work/err1" || fail "missing model: $(cat "$work/err1")"
"$program" screen --model "$work/top.csv" --library-size 10 --top-k 1 > /dev/null 2> "$work/err2" && fail "a CSV was accepted as a model"
grep -q "not a Strata checkpoint" "$work/err2" || fail "not a model: $(cat "$work/err2")"
"$program" dock > /dev/null 2> "$work/err3" && fail "an unknown command was accepted"
grep -q "unknown command 'dock'" "$work/err3" || fail "unknown command: $(cat "$work/err3")"
echo PASS
