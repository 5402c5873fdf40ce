#!/usr/bin/env bash
# transfer_drug_response end to end, on its --quick setting:
#   * the same table (every fold's figures, to the bit) on 1, 2 and 4 ranks;
#   * the synthetic studies written as Uno-layout files and read back give the same table;
#   * a run killed with SIGKILL part-way, rerun with the same work directory, trains only the
#     members it lacks and ends with the same table;
#   * bad input stops it before training, with a message that says what is wrong.
#   usage: transfer_workflow.sh <transfer_drug_response> <scratch directory> [<mpiexec>]
set -euo pipefail
source "$(dirname "$0")/workflow_support.sh"
program=$1
work=$2
mpiexec=${3:-}
rm -rf "$work" && mkdir -p "$work"
quick=(--quick --threads 1)

"$program" "${quick[@]}" --out "$work/one" > "$work/one.log"
grep -q "two-subnetwork - concatenated" "$work/one.log" || { cat "$work/one.log"; echo "FAIL: no comparison printed"; exit 1; }
for f in one.csv one_folds.csv one.json; do [[ -s $work/$f ]] || { echo "FAIL: $f not written"; exit 1; }; done

if [[ -n $mpiexec ]]; then
  for ranks in 2 4; do
    "$mpiexec" -n "$ranks" "$program" "${quick[@]}" --out "$work/ranks$ranks" > "$work/ranks$ranks.log"
    cmp "$work/one_folds.csv" "$work/ranks${ranks}_folds.csv" || { echo "FAIL: $ranks ranks give another table"; exit 1; }
    echo "$ranks ranks: the same table"
  done
  # Members data-parallel on groups of 2 ranks: the same table for 1 and 2 such groups.
  for ranks in 2 4; do
    "$mpiexec" -n "$ranks" "$program" "${quick[@]}" --ranks-per-member 2 --out "$work/groups$ranks" > "$work/groups$ranks.log"
  done
  cmp "$work/groups2_folds.csv" "$work/groups4_folds.csv" || { echo "FAIL: 1 and 2 data-parallel groups differ"; exit 1; }
  grep -q "each member data-parallel on 2 ranks" "$work/groups4.log" || { echo "FAIL: no data-parallel members"; exit 1; }
  echo "members data-parallel on 2 ranks: the same table with 1 and 2 groups"
  if "$mpiexec" -n 3 "$program" "${quick[@]}" --ranks-per-member 2 > "$work/bad_groups.log" 2>&1; then
    echo "FAIL: 3 ranks in groups of 2 were accepted"; exit 1
  fi
  grep -q "3 ranks cannot form groups of 2" "$work/bad_groups.log" || { cat "$work/bad_groups.log"; echo "FAIL: unclear error"; exit 1; }
fi

"$program" "${quick[@]}" --write-studies "$work/studies" > /dev/null
"$program" "${quick[@]}" --studies "$work/studies" --out "$work/files" > "$work/files.log"
cmp "$work/one_folds.csv" "$work/files_folds.csv" || { echo "FAIL: the study files give another table"; exit 1; }
echo "Uno-layout files: the same table"

# Killed once a quarter of the members are done, then rerun.
kill_after_jobs 24 "$work/members" "$work/killed.log" "$program" "${quick[@]}" --work-dir "$work/members" --out "$work/killed"
(( kept >= 24 && kept < 96 )) || { echo "FAIL: $kept of 96 members at the kill: nothing to resume"; exit 1; }
"$program" "${quick[@]}" --work-dir "$work/members" --out "$work/resumed" > "$work/resumed.log"
grep -q "($kept members kept on rank 0)" "$work/resumed.log" || { tail -3 "$work/resumed.log"; echo "FAIL: not $kept members kept"; exit 1; }
cmp "$work/one_folds.csv" "$work/resumed_folds.csv" || { echo "FAIL: the resumed run gives another table"; exit 1; }
echo "killed with $kept of 96 members done; the rerun trained the rest and gives the same table"

refused() { expect_refusal "$work/bad.log" "$1" "$program" "${quick[@]}" "${@:2}"; }  # refused <message> <arguments...>
refused "has 16 drugs: too few for 20 drug-blind folds" --target-folds 20
refused "no study 'NCI60'" --target NCI60
refused "source and target are both 'CTRP'" --target CTRP
refused "another architecture" --networks concatenated --source-models "$(ls "$work"/members/source-two-subnetwork-0.job)"
refused "result of a different sweep" --work-dir "$work/members" --width 16
refused "not EPOCH:LAYER-PATTERN" --thaw 2
refused "selects nothing in any network" --refine-groups 7:Dense=0.1
refused "selects nothing in any network" --thaw 1:5:Fork
refused "not a rate multiplier" --refine-groups 0:Fork=-1
echo "bad input refused before training"
# Refinement with frozen encoders and gradual unfreezing of the rest: a different ETL, the same
# baselines.
"$program" "${quick[@]}" --networks two-subnetwork --refine-groups 0:Fork=0 --thaw 0:2:Dense,2:1:Repeat \
  --out "$work/frozen" > "$work/frozen.log"
grep -q "^two-subnetwork  random      SCV" "$work/frozen.log" || { echo "FAIL: no table with refinement groups"; exit 1; }
"$program" --help | grep -q -- "--source-models" || { echo "FAIL: --help"; exit 1; }
echo "PASS"
