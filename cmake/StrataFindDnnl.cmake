# strata_find_dnnl(<why>): finds oneDNN 2.6+ (dnnl_FOUND, DNNL::dnnl) and sets <why> to "" when
# it can be used, else to the reason and the package that would fix it. Used by Strata's own
# build and by its installed CMake package alike.
#
# Why a function and not find_package alone: a oneDNN package built with the OpenCL GPU runtime
# (Debian's is) calls find_package(OpenCL REQUIRED) in its config, and that failure would end the
# caller's whole configure even under QUIET. So the config is read first, and OpenCL looked for
# quietly when it asks for it.
function(strata_find_dnnl why)
  find_file(STRATA_DNNL_CONFIG dnnl-config.cmake
            PATH_SUFFIXES lib/${CMAKE_LIBRARY_ARCHITECTURE}/cmake/dnnl lib/cmake/dnnl lib64/cmake/dnnl)
  if(STRATA_DNNL_CONFIG)
    file(STRINGS "${STRATA_DNNL_CONFIG}" ocl_runtime REGEX "DNNL_GPU_RUNTIME \"OCL\"")
    if(ocl_runtime)
      find_package(OpenCL QUIET)
      if(NOT OpenCL_FOUND)
        set(${why} "oneDNN needs the OpenCL headers (apt-get install ocl-icd-opencl-dev)" PARENT_SCOPE)
        return()
      endif()
    endif()
  endif()
  find_package(dnnl 2.6 QUIET CONFIG)
  if(NOT dnnl_FOUND)
    set(${why} "oneDNN not found (apt-get install libdnnl-dev)" PARENT_SCOPE)
    return()
  endif()
  set(dnnl_FOUND TRUE PARENT_SCOPE)
  set(${why} "" PARENT_SCOPE)
endfunction()
