#pragma once
/// \file cuda_device.hpp
/// Whether a CUDA device can be used, so that CUDA programs and test binaries can skip cleanly on
/// machines without a GPU instead of failing on their first allocation.

#if defined(__CUDACC__)
#include <cuda_runtime_api.h>
#endif

namespace strata {

/// True when this translation unit was compiled by nvcc and the CUDA runtime reports at least
/// one usable device. Any runtime error (no driver, no device, a driver older than the runtime)
/// counts as "no device". Always false in code compiled without nvcc.
inline bool cuda_device_available() {
#if defined(__CUDACC__)
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    static_cast<void>(cudaGetLastError());  // clear the sticky error so later runtime calls do not report it
    return false;
  }
  return count > 0;
#else
  return false;
#endif
}

}  // namespace strata
