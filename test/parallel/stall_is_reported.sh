#!/usr/bin/env bash
# A collective that some rank never joins must end the job, non-zero, with a report of who has
# not arrived where, soon after the stall timeout (STRATA_STALL_TIMEOUT, set by the test).
#   usage: stall_is_reported.sh <mpiexec> <ranks> <mpi_stall program> <mode> <regex the report must match>...
set -uo pipefail
mpiexec=$1 ranks=$2 program=$3 mode=$4
shift 4
start=$(date +%s)
output=$(timeout 60 "$mpiexec" -n "$ranks" "$program" "$mode" 2>&1)
status=$?
seconds=$(( $(date +%s) - start ))
echo "$output" | grep -v '^\s*$' | head -30
echo "exit status $status after ${seconds} s (stall timeout ${STRATA_STALL_TIMEOUT:-unset} s)"
(( status != 0 && status != 124 )) || { echo "FAIL: the job did not fail (or hung until the timeout)"; exit 1; }
(( seconds <= 15 )) || { echo "FAIL: took ${seconds} s"; exit 1; }
for pattern in "$@"; do
  grep -qE -- "$pattern" <<< "$output" || { echo "FAIL: the report does not match '$pattern'"; exit 1; }
done
echo "PASS"
