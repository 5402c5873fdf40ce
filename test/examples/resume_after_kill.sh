#!/usr/bin/env bash
# A drug_response run killed with SIGKILL after writing a checkpoint, then resumed, must end with
# the same weights, bit for bit, as a run that was never interrupted.
#   usage: resume_after_kill.sh <path to drug_response> <scratch directory>
set -euo pipefail
program=$1
work=$2
rm -rf "$work" && mkdir -p "$work"
# A small model on narrow synthetic data: 8 epochs of 24 steps, a checkpoint every 5 steps.
args=(--cell-width 32 --drug-width 48 --tuples 4000 --train-samples 3000 --validation-samples 500
      --width 64 --batch 128 --epochs 8 --warmup-steps 20 --threads 1)

"$program" "${args[@]}" > "$work/uninterrupted.log"
expected=$(grep '^weights fnv1a64:' "$work/uninterrupted.log")

"$program" "${args[@]}" --checkpoint "$work/run.ck" --checkpoint-every 5 > "$work/killed.log" &
pid=$!
for _ in $(seq 1 6000); do  # up to 60 s on a loaded machine
  [[ -s $work/run.ck ]] && break
  sleep 0.01
done
kill -KILL "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
[[ -s $work/run.ck ]] || { echo "FAIL: no checkpoint was written before the kill"; exit 1; }

"$program" "${args[@]}" --checkpoint "$work/run.ck" --checkpoint-every 5 --resume "$work/run.ck" > "$work/resumed.log"
resumed_at=$(grep '^resumed' "$work/resumed.log")
echo "$resumed_at"
step=$(sed -E 's/.*step ([0-9]+).*/\1/' <<< "$resumed_at")
(( step < 8 * 24 )) || { echo "FAIL: the run finished before it was killed; nothing was resumed"; exit 1; }
actual=$(grep '^weights fnv1a64:' "$work/resumed.log")
echo "uninterrupted: $expected"
echo "resumed:       $actual"
[[ "$expected" == "$actual" ]] || { echo "FAIL: resumed weights differ"; exit 1; }

# A checkpoint of another run is refused with both descriptions.
if "$program" "${args[@]}" --seed 2 --resume "$work/run.ck" > "$work/other.log" 2>&1; then
  echo "FAIL: resuming another run's checkpoint succeeded"; exit 1
fi
grep -q 'belongs to another run' "$work/other.log" || { cat "$work/other.log"; echo "FAIL: unclear error"; exit 1; }
echo "PASS"
