# add_subdirectory: configure (without a build type) and build the subdirectory project, run its
# program, then install it and check that only the project's own program was installed and that
# Strata registered no tests.
include(${CMAKE_CURRENT_LIST_DIR}/consumer_steps.cmake)
file(REMOVE_RECURSE ${WORK_DIR})
strata_configure_and_build(${CONSUMER_SOURCE_DIR}/subdirectory ${WORK_DIR}/build
  -DSTRATA_SOURCE_DIR=${STRATA_SOURCE_DIR})
strata_step("run the consumer" ${WORK_DIR}/build/consumer)
message(STATUS "consumer: ${STEP_OUTPUT}")
file(STRINGS ${WORK_DIR}/build/CMakeCache.txt build_type REGEX "^CMAKE_BUILD_TYPE:")
if(NOT build_type MATCHES "^CMAKE_BUILD_TYPE:[A-Z]+=$")
  message(FATAL_ERROR "the cached build type is not empty: ${build_type}")
endif()
if(EXISTS ${WORK_DIR}/build/strata/CTestTestfile.cmake)
  message(FATAL_ERROR "Strata registered tests in a subproject")
endif()
strata_step("cmake --install" ${CMAKE_COMMAND} --install ${WORK_DIR}/build --prefix ${WORK_DIR}/prefix)
file(GLOB_RECURSE installed LIST_DIRECTORIES false RELATIVE ${WORK_DIR}/prefix ${WORK_DIR}/prefix/*)
if(NOT installed STREQUAL "bin/consumer")
  message(FATAL_ERROR "installed more than bin/consumer: ${installed}")
endif()
