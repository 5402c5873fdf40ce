#pragma once
/// \file config.hpp
/// Basic types and portability macros shared by every Strata header.

#include <cstddef>
#include <cstdint>

/// Marks a function callable from host and device code. nvcc needs the CUDA attributes for
/// functors and lambdas that Thrust launches on the GPU; g++ (including Thrust's OpenMP and CPP
/// systems) must not see them, because CCCL does not define them outside nvcc.
#if defined(__CUDACC__)
#define STRATA_HD __host__ __device__
#else
#define STRATA_HD
#endif

namespace strata {

/// Signed index type for sizes, rows and columns (Eigen's convention).
using Index = std::ptrdiff_t;

/// A width that is not known at compile time: it is given or inferred at run time.
inline constexpr Index dynamic = -1;

/// True when both widths are known at compile time.
constexpr bool both_known(Index a, Index b) { return a != dynamic && b != dynamic; }

}  // namespace strata
