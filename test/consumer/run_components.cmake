# find_package(Strata COMPONENTS ...) against an install. MODE:
#   present  the components the build found (PRESENT, comma-separated) load, with targets that
#            link; `nosuch` and the absent ones (ABSENT) asked as optional are reported missing
#   missing  `nosuch` and the absent ones asked as required fail with a message naming each
#   choices  STRATA_NO_MATH_ERRNO, STRATA_WITH_BLAS and STRATA_GEMM_ONEDNN OFF reach the consumer's
#            compile
# EXPECT_BLAS, EXPECT_GEMM_ONEDNN, EXPECT_NO_MATH_ERRNO: the build's choices (0 or 1). ALL: every component Strata
# has (comma-separated).
include(${CMAKE_CURRENT_LIST_DIR}/consumer_steps.cmake)
file(REMOVE_RECURSE ${WORK_DIR})
strata_install(${WORK_DIR}/prefix)
set(project ${CONSUMER_SOURCE_DIR}/components)
set(common -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix -DCMAKE_BUILD_TYPE=Debug)
set(optional nosuch)
if(ABSENT)
  string(APPEND optional ",${ABSENT}")
endif()

if(MODE STREQUAL "present")
  strata_configure_and_build(${project} ${WORK_DIR}/build ${common}
    -DREQUIRED_COMPONENTS=${PRESENT} -DOPTIONAL_COMPONENTS=${optional}
    -DEXPECT_BLAS=${EXPECT_BLAS} -DEXPECT_GEMM_ONEDNN=${EXPECT_GEMM_ONEDNN} -DEXPECT_NO_MATH_ERRNO=${EXPECT_NO_MATH_ERRNO})
elseif(MODE STREQUAL "choices")
  strata_configure_and_build(${project} ${WORK_DIR}/build ${common}
    -DCHOICES_OFF=ON -DEXPECT_BLAS=0 -DEXPECT_GEMM_ONEDNN=0 -DEXPECT_NO_MATH_ERRNO=0)
elseif(MODE STREQUAL "missing")
  execute_process(COMMAND ${CMAKE_COMMAND} -S ${project} -B ${WORK_DIR}/build ${common}
      -DCMAKE_CXX_COMPILER=${CXX} -DREQUIRED_COMPONENTS=${optional} -DEXPECT_BLAS=0 -DEXPECT_GEMM_ONEDNN=0 -DEXPECT_NO_MATH_ERRNO=0
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(rc EQUAL 0)
    message(FATAL_ERROR "find_package(Strata REQUIRED COMPONENTS ${optional}) succeeded:\n${out}")
  endif()
  string(REGEX REPLACE "[ \t\r\n]+" " " flat "${out}")  # CMake wraps long messages
  string(REPLACE "," ";" expected "${optional}")
  foreach(component IN LISTS expected)
    if(component STREQUAL "nosuch")
      string(REPLACE "," ", " listed "${ALL}")
      set(text "Strata has no component \"nosuch\" (its components: ${listed})")
    else()
      set(text "this Strata install has no component \"${component}\"")
    endif()
    string(FIND "${flat}" "${text}" at)
    if(at EQUAL -1)
      message(FATAL_ERROR "the failure does not say: ${text}\n${out}")
    endif()
  endforeach()
  string(REGEX MATCH "Reason given by package:[^\n]*\n[^\n]*\n[^\n]*" reason "${out}")
  message(STATUS "consumer: failed as it should:\n${reason}")
else()
  message(FATAL_ERROR "MODE must be present, missing or choices")
endif()
