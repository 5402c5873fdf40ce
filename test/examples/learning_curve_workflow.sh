#!/usr/bin/env bash
# learning_curve end to end, on its --quick setting:
#   * the same scores (the CSV but its seconds column) with 1 and 2 jobs at a time, on 2 ranks,
#     and after a SIGKILL and a rerun with the same work directory (which trains only what is
#     missing); a data-parallel job group runs too;
#   * the fits are printed and written, and --fit-only refits a written CSV;
#   * bad input stops it with a message that says what is wrong.
#   usage: learning_curve_workflow.sh <learning_curve> <scratch directory> [<mpiexec>]
set -euo pipefail
source "$(dirname "$0")/workflow_support.sh"
program=$1
work=$2
mpiexec=${3:-}
rm -rf "$work" && mkdir -p "$work"
quick=(--quick --threads 1)
scores() { cut -d, -f1-6 "$1"; }  # every column but the seconds

"$program" "${quick[@]}" --out "$work/one" > "$work/one.log"
for f in one.csv one_fit.csv; do [[ -s $work/$f ]] || fail "$f not written"; done
(( $(wc -l < "$work/one.csv") == 1 + 2 * 3 * 7 * 4 )) || fail "not one row per model, split, size and metric"
grep -q "mae(m) = alpha m^beta + gamma" "$work/one.log" || { cat "$work/one.log"; fail "no fit printed"; }
grep -q "extrapolation to 4096" "$work/one.log" || fail "no extrapolation check printed"
awk -F, 'NR == 1 { n = NF } NF != n { exit 1 }' "$work/one_fit.csv" || fail "a row of one_fit.csv has not the header's fields"
(( $(wc -l < "$work/one_fit.csv") == 3 )) || fail "not one fit per model"

"$program" --quick --threads 2 --out "$work/two" > /dev/null
cmp <(scores "$work/one.csv") <(scores "$work/two.csv") || fail "2 jobs at a time give other scores"
echo "1 and 2 jobs at a time: the same scores"

if [[ -n $mpiexec ]]; then
  "$mpiexec" -n 2 "$program" "${quick[@]}" --out "$work/ranks2" > "$work/ranks2.log"
  cmp <(scores "$work/one.csv") <(scores "$work/ranks2.csv") || fail "2 ranks give other scores"
  echo "2 ranks: the same scores"
  "$mpiexec" -n 2 "$program" "${quick[@]}" --ranks-per-job 2 --splits 1 --out "$work/group" > "$work/group.log"
  grep -q "each job data-parallel on 2 ranks" "$work/group.log" || fail "no data-parallel jobs"
  (( $(wc -l < "$work/group.csv") == 1 + 2 * 7 * 4 )) || fail "the data-parallel run scored not every job"
  echo "jobs data-parallel on 2 ranks: every job scored"
fi

# Killed once 10 of the 42 jobs are done, then rerun.
kill_after_jobs 10 "$work/jobs" "$work/killed.log" "$program" "${quick[@]}" --work-dir "$work/jobs" --out "$work/killed"
(( kept >= 10 && kept < 42 )) || fail "$kept of 42 jobs at the kill: nothing to resume"
"$program" "${quick[@]}" --work-dir "$work/jobs" --out "$work/resumed" > "$work/resumed.log"
grep -q "($kept jobs kept on rank 0)" "$work/resumed.log" || { tail -3 "$work/resumed.log"; fail "not $kept jobs kept"; }
cmp <(scores "$work/one.csv") <(scores "$work/resumed.csv") || fail "the resumed run gives other scores"
echo "killed with $kept of 42 jobs done; the rerun trained the rest and gives the same scores"

# Boosted trees, where the build found XGBoost; otherwise a clear refusal.
if "$program" "${quick[@]}" --models GBT,mNN --splits 1 --max-size 1024 --min-fit-size 0 --out "$work/gbt" > "$work/gbt.log" 2>&1; then
  (( $(grep -c '^GBT,0,.*,mae,' "$work/gbt.csv") == 5 )) || fail "GBT did not score every size"
  echo "GBT: every size scored"
else
  grep -q "GBT needs XGBoost" "$work/gbt.log" || { cat "$work/gbt.log"; fail "GBT failed"; }
  echo "GBT: refused without XGBoost"
fi

"$program" --fit-only "$work/one.csv" --weights binomial --out "$work/refit" > "$work/refit.log"
grep -q "mNN (mae, median of 3 splits at 7 sizes, 64 to 4096)" "$work/refit.log" || { cat "$work/refit.log"; fail "no refit"; }
[[ -s $work/refit_fit.csv ]] || fail "refit_fit.csv not written"
echo "--fit-only refits written scores"

refused() { expect_refusal "$work/refused.log" "$1" "$program" "${@:2}"; }  # refused <message> <arguments...>
refused "is larger than split 0's training pool" "${quick[@]}" --max-size 20000
refused "needs at least 3" "${quick[@]}" --min-size 2048
refused "mae or mse, not 'r2'" "${quick[@]}" --metric r2
refused "leaves 2 of the sizes 64 to 4096 to fit" "${quick[@]}" --min-fit-size 2048
refused "must be below --patience" "${quick[@]}" --plateau-patience 10
refused "the confidence must be in (0, 1)" "${quick[@]}" --confidence 1.5
refused "unknown model 'xgb'" "${quick[@]}" --models mNN,xgb
refused "splits must be in [1, 10]" "${quick[@]}" --splits 11
refused "unknown split 'diagonal'" "${quick[@]}" --scheme diagonal
refused "cannot open" --fit-only "$work/absent.csv"
sed 's/^\(mNN,0,64,mae,\)[^,]*/\1nan/' "$work/one.csv" > "$work/nan.csv"
refused "mNN's mae at size 64 on split 0 is not finite" --fit-only "$work/nan.csv"
echo "bad input refused with clear messages"
echo PASS
