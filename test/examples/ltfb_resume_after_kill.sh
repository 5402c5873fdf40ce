#!/usr/bin/env bash
# A population of 4 trainers killed with SIGKILL after some tournament rounds, then resumed,
# must end with the same models, bit for bit, as a run never interrupted; resuming with another
# population size must be refused with a message.
#   usage: ltfb_resume_after_kill.sh <mpiexec> <path to ltfb_drug_response> <scratch directory>
set -uo pipefail
mpiexec=$1 program=$2 work=$3
rm -rf "$work" && mkdir -p "$work"
# 4 trainers x 1 rank, 450 tuples each: 8 steps per epoch, 12 epochs, a round every 4 steps
# (24 rounds, every other one at an epoch's end): the kill after round 3 leaves most to resume.
args=(--train-samples 2000 --validation-samples 500 --tuples 20000 --width 32 --epochs 12 --every-steps 4 --batch 64
      --threads 1 --no-compare)
checksums() { grep -oE 'LTFB rank [0-9]+ .trainer [0-9]+. weights fnv1a64: [0-9a-f]+' "$1"; }

"$mpiexec" -n 4 "$program" "${args[@]}" --log "$work/uninterrupted.csv" > "$work/uninterrupted.log" 2>&1 ||
  { cat "$work/uninterrupted.log"; echo "FAIL: the uninterrupted run failed"; exit 1; }
expected=$(checksums "$work/uninterrupted.log")
[[ $(wc -l <<< "$expected") == 4 ]] || { cat "$work/uninterrupted.log"; echo "FAIL: no weights checksums printed"; exit 1; }

"$mpiexec" -n 4 "$program" "${args[@]}" --log "$work/killed.csv" --checkpoint "$work/run.ck" > "$work/killed.log" 2>&1 &
job=$!
for _ in $(seq 1200); do  # until the third round has been played (up to 120 s on a loaded machine)
  grep -q 'tournament 3 (step' "$work/killed.log" && break
  kill -0 "$job" 2>/dev/null || break
  sleep 0.1
done
# A rank: a child of mpiexec running the program (not a helper process of the launcher).
victim=$(pgrep -P "$job" -x "$(basename "$program" | cut -c1-15)" | tail -n 1)
[[ -n "$victim" ]] || { echo "FAIL: no rank process of $(basename "$program") under mpiexec ($job)"; exit 1; }
kill -KILL "$victim"
wait "$job" 2>/dev/null
grep -q 'tournament 3 (step' "$work/killed.log" || { cat "$work/killed.log"; echo "FAIL: no round was played before the kill"; exit 1; }
grep -q 'tournament 24 (step' "$work/killed.log" && { echo "FAIL: the run finished before it was killed; nothing to resume"; exit 1; }
ls "$work"
ls "$work"/run.ck.trainer* > /dev/null 2>&1 || { echo "FAIL: no tournament checkpoint was written before the kill"; exit 1; }

"$mpiexec" -n 4 "$program" "${args[@]}" --log "$work/killed.csv" --checkpoint "$work/run.ck" --resume "$work/run.ck" \
  > "$work/resumed.log" 2>&1 || { cat "$work/resumed.log"; echo "FAIL: the resumed run failed"; exit 1; }
resumed_at=$(grep -oE 'resumed from .*' "$work/resumed.log")
echo "$resumed_at"
rounds=$(sed -E 's/.*: ([0-9]+) tournaments played.*/\1/' <<< "$resumed_at")
[[ "$rounds" =~ ^[0-9]+$ ]] && (( rounds >= 3 && rounds < 24 )) ||
  { echo "FAIL: the resumed run did not continue from the rounds played before the kill"; exit 1; }
actual=$(checksums "$work/resumed.log")
echo "uninterrupted:"; echo "$expected"
echo "resumed:"; echo "$actual"
[[ "$expected" == "$actual" ]] || { echo "FAIL: the resumed population's weights differ"; exit 1; }
cmp "$work/uninterrupted.csv" "$work/killed.csv" || { echo "FAIL: the resumed tournament log differs"; exit 1; }

# Another population size: a clear error, not a hang or a crash.
if "$mpiexec" -n 2 "$program" "${args[@]}" --resume "$work/run.ck" > "$work/other.log" 2>&1; then
  echo "FAIL: resuming 4 trainers' checkpoints with 2 trainers succeeded"; exit 1
fi
grep -q 'was written by a population of 4 trainers x 1 rank(s); this run has 2 trainers x 1 rank(s)' "$work/other.log" ||
  { cat "$work/other.log"; echo "FAIL: unclear error for another population size"; exit 1; }
echo "PASS"
