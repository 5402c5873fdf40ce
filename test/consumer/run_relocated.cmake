# An install copied to another prefix still works: install into prefix A, `cp -a` it to prefix B,
# delete A, check that the exported targets name no path of this machine (the system's libraries,
# the build tree, prefix A), then build and run the consumer against B with find_package(Strata).
include(${CMAKE_CURRENT_LIST_DIR}/consumer_steps.cmake)
file(REMOVE_RECURSE ${WORK_DIR})
set(moved ${WORK_DIR}/elsewhere/prefix-b)
strata_relocated_install(${moved})
strata_expect_no_path("${moved}/lib*/cmake/Strata/Strata*Targets*.cmake"
  /usr/lib ${WORK_DIR} ${STRATA_BUILD_DIR} ${STRATA_SOURCE_DIR})
strata_expect_no_path("${moved}/lib*/cmake/Strata/StrataConfig*.cmake" ${WORK_DIR} ${STRATA_BUILD_DIR} ${STRATA_SOURCE_DIR})
strata_expect_no_path("${moved}/share/pkgconfig/strata.pc" ${WORK_DIR} ${STRATA_BUILD_DIR} ${STRATA_SOURCE_DIR})
strata_configure_and_build(${CONSUMER_SOURCE_DIR} ${WORK_DIR}/build
  -DCMAKE_PREFIX_PATH=${moved} -DCMAKE_BUILD_TYPE=Debug)
strata_step("run the consumer" ${WORK_DIR}/build/consumer)
message(STATUS "consumer: ${STEP_OUTPUT}")
