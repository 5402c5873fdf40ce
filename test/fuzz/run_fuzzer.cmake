# Runs one fuzz target for a bounded time as a CTest (cmake -P): creates its scratch corpus and
# artifact folder,
# then runs FUZZER with SCRATCH first (where libFuzzer writes what it finds) and the checked-in
# SEEDS second. A crash, hang, leak, out-of-memory or sanitizer report makes libFuzzer exit
# non-zero, which fails the test; the input is saved as ARTIFACTS<kind>-<hash>.
get_filename_component(artifact_folder "${ARTIFACTS}" DIRECTORY)
file(MAKE_DIRECTORY "${SCRATCH}" "${artifact_folder}")
execute_process(
  COMMAND "${FUZZER}" -max_total_time=${SECONDS} "-artifact_prefix=${ARTIFACTS}" ${ARGS} "${SCRATCH}" "${SEEDS}"
  RESULT_VARIABLE result)
if(NOT result EQUAL 0)
  message(FATAL_ERROR "${FUZZER} failed (${result}): see the report above; the input is saved under ${ARTIFACTS}*")
endif()
