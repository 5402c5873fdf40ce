# Shell helpers of the example workflow tests (sourced by them).

fail() { echo "FAIL: $*"; exit 1; }

# expect_refusal <log> <expected message> <command...>: the command must fail, say the expected
# message (a fixed string) and train nothing first (no "on this rank" progress line).
expect_refusal() {
  local log=$1 expected=$2
  shift 2
  if "$@" > "$log" 2>&1; then fail "accepted: ${*:2}"; fi
  grep -qF -- "$expected" "$log" || { cat "$log"; fail "${*:2} did not say '$expected'"; }
  if grep -q "on this rank" "$log"; then fail "${*:2} trained before refusing"; fi
}

# kill_after_jobs <count> <work directory> <log> <command...>: runs the command in the
# background, kills it with SIGKILL once the work directory holds <count> finished jobs (*.job;
# at most a minute), and sets `kept` to how many it holds then.
kill_after_jobs() {
  local count=$1 directory=$2 log=$3
  shift 3
  "$@" > "$log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 6000); do
    (( $(find "$directory" -name '*.job' 2> /dev/null | wc -l) >= count )) && break
    sleep 0.01
  done
  kill -KILL "$pid" 2> /dev/null || true
  wait "$pid" 2> /dev/null || true
  kept=$(find "$directory" -name '*.job' | wc -l)
}
