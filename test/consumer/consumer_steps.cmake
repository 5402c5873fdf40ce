# Steps shared by the consumer tests (cmake -P scripts run by CTest). Inputs from test/CMakeLists.txt:
# STRATA_BUILD_DIR, STRATA_SOURCE_DIR, CONSUMER_SOURCE_DIR (this directory), WORK_DIR, CXX.

# strata_step(<what> <command...>): runs the command; the test fails with its output if it fails.
# Its output is left in STEP_OUTPUT.
function(strata_step what)
  message(STATUS "consumer: ${what}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${what} failed (${rc}):\n${out}")
  endif()
  set(STEP_OUTPUT "${out}" PARENT_SCOPE)
endfunction()

# strata_install(<prefix>): installs the Strata build tree into prefix.
function(strata_install prefix)
  strata_step("cmake --install into ${prefix}" ${CMAKE_COMMAND} --install ${STRATA_BUILD_DIR} --prefix ${prefix})
endfunction()

# strata_configure_and_build(<source dir> <build dir> <cmake args...>)
function(strata_configure_and_build source build)
  strata_step("configure ${source}" ${CMAKE_COMMAND} -S ${source} -B ${build} -DCMAKE_CXX_COMPILER=${CXX} ${ARGN})
  strata_step("build ${build}" ${CMAKE_COMMAND} --build ${build})
endfunction()

# strata_relocated_install(<prefix B>): installs into a first prefix A, copies it to B with
# `cp -a` and deletes A, so that only the copy is left to consume.
function(strata_relocated_install moved)
  set(first ${WORK_DIR}/first-prefix)
  strata_install(${first})
  get_filename_component(parent ${moved} DIRECTORY)
  file(MAKE_DIRECTORY ${parent})
  strata_step("cp -a to ${moved}" cp -a ${first} ${moved})
  file(REMOVE_RECURSE ${first})
endfunction()

# strata_expect_no_path(<file glob> <path...>): no file matching the glob names any of the paths.
function(strata_expect_no_path glob)
  file(GLOB files ${glob})
  if(NOT files)
    message(FATAL_ERROR "no file matches ${glob}")
  endif()
  foreach(file IN LISTS files)
    file(READ ${file} text)
    foreach(path IN LISTS ARGN)
      string(FIND "${text}" "${path}" at)
      if(NOT at EQUAL -1)
        message(FATAL_ERROR "${file} holds the path ${path}")
      endif()
    endforeach()
  endforeach()
endfunction()
