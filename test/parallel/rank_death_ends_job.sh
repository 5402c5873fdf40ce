#!/usr/bin/env bash
# A rank killed by SIGKILL (no exception, no message of its own) must end the whole job,
# non-zero, within 10 s: the other ranks must not wait for it in their next collective.
#   usage: rank_death_ends_job.sh <mpiexec> <ranks> <regex of a line printed once the job is busy> <program> [args...]
set -uo pipefail
mpiexec=$1 ranks=$2 busy=$3
shift 3
log=$(mktemp)
trap 'rm -f "$log"' EXIT
"$mpiexec" -n "$ranks" "$@" > "$log" 2>&1 &
job=$!
for _ in $(seq 600); do
  grep -qE -- "$busy" "$log" && break
  kill -0 "$job" 2>/dev/null || break
  sleep 0.1
done
grep -qE -- "$busy" "$log" || { cat "$log"; echo "FAIL: the job never printed '$busy'"; kill -9 "$job"; exit 1; }
# The ranks are mpiexec's children running the program (pgrep matches 15 characters of a name);
# kill the last one.
victim=$(pgrep -P "$job" -x "$(basename "$1" | cut -c1-15)" | tail -n 1)
[[ -n "$victim" ]] || { echo "FAIL: no rank process of $1 found under mpiexec ($job)"; kill -9 "$job"; exit 1; }
start=$(date +%s%N)
kill -9 "$victim"
for _ in $(seq 300); do
  kill -0 "$job" 2>/dev/null || break
  sleep 0.1
done
if kill -0 "$job" 2>/dev/null; then
  echo "FAIL: the job still runs 30 s after rank process $victim was killed"
  pkill -9 -P "$job"; kill -9 "$job"; exit 1
fi
wait "$job"
status=$?
milliseconds=$(( ($(date +%s%N) - start) / 1000000 ))
tail -n 8 "$log"
echo "killed rank process $victim; the job ended with status $status after $milliseconds ms"
(( status != 0 )) || { echo "FAIL: the job exited 0"; exit 1; }
(( milliseconds <= 10000 )) || { echo "FAIL: took more than 10 s"; exit 1; }
echo "PASS"
