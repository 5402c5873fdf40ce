#!/usr/bin/env bash
# drug_response under mpirun with --deterministic must end with the same weights, bit for bit,
# on 1, 2 and 4 ranks; and a checkpoint written by 4 ranks must resume on 2 to those weights.
#   usage: mpi_deterministic.sh <mpiexec> <path to drug_response> <scratch directory>
set -euo pipefail
mpiexec=$1
program=$2
work=$3
rm -rf "$work" && mkdir -p "$work"
args=(--cell-width 32 --drug-width 48 --tuples 4000 --train-samples 3000 --validation-samples 500
      --width 64 --warmup-steps 10 --threads 1 --deterministic)
checksum() { grep '^weights fnv1a64:' "$1"; }

for ranks in 1 2 4; do
  "$mpiexec" -n "$ranks" "$program" "${args[@]}" --epochs 3 > "$work/np$ranks.log"
  echo "ranks $ranks: $(checksum "$work/np$ranks.log")"
done
[[ "$(checksum "$work/np1.log")" == "$(checksum "$work/np2.log")" ]] || { echo "FAIL: 1 and 2 ranks differ"; exit 1; }
[[ "$(checksum "$work/np1.log")" == "$(checksum "$work/np4.log")" ]] || { echo "FAIL: 1 and 4 ranks differ"; exit 1; }

"$mpiexec" -n 4 "$program" "${args[@]}" --epochs 2 --checkpoint "$work/run.ck" > "$work/first.log"
"$mpiexec" -n 2 "$program" "${args[@]}" --epochs 3 --resume "$work/run.ck" > "$work/resumed.log"
echo "4 ranks for 2 epochs, then 2 ranks: $(checksum "$work/resumed.log")"
[[ "$(checksum "$work/np1.log")" == "$(checksum "$work/resumed.log")" ]] || { echo "FAIL: the resumed run differs"; exit 1; }
echo "PASS"
