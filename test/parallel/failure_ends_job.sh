#!/usr/bin/env bash
# An exception on one rank must end the whole MPI job within 10 s, non-zero, with its message.
#   usage: failure_ends_job.sh <mpiexec> <mpi_failure program>
set -uo pipefail
start=$(date +%s)
output=$(timeout 30 "$1" -n 2 "$2" 2>&1)
status=$?
seconds=$(( $(date +%s) - start ))
echo "$output" | grep -v '^\s*$' | head -20
echo "exit status $status after ${seconds} s"
(( status != 0 && status != 124 )) || { echo "FAIL: the job did not fail (or hung until the timeout)"; exit 1; }
(( seconds <= 10 )) || { echo "FAIL: took ${seconds} s"; exit 1; }
grep -q "rank 1/2: error: samples.csv:72:3: 'x7' is not a number" <<< "$output" || { echo "FAIL: the rank's message is missing"; exit 1; }
echo "PASS"
