#pragma once
/// \file onednn_gemm.hpp
/// Single-precision GEMM on oneDNN's `dnnl_sgemm`: the engine of EigenBackend<float>'s products
/// in a build that defines `STRATA_GEMM_ONEDNN` (CMake option STRATA_GEMM_ONEDNN, on by default
/// where oneDNN is found). Measured at the Combo training shapes on 2 cores of an AVX-512 EPYC
/// (the 16 forward, weight-gradient and input-gradient products of one step, batch 256, best of
/// 5): 100-112 ms against OpenBLAS 0.3.21's 105-121 ms over three runs.
///
/// oneDNN threads with OpenMP (Debian's build), so the products use the calling thread's OpenMP
/// thread count, as Strata's element-wise loops do (core/math_threads.hpp).

#include <oneapi/dnnl/dnnl.h>

#include "../core/error.hpp"
#include "../core/tensor.hpp"

namespace strata::detail {

/// Column-major `C (m x n) = alpha op(A) op(B) + beta C`, op = transpose where the flag is set;
/// `lda`, `ldb`, `ldc`: the stored row counts of A, B and C. Every dimension must be positive.
inline void onednn_sgemm(bool transpose_a, bool transpose_b, Index m, Index n, Index k, float alpha, const float* a,
                         Index lda, const float* b, Index ldb, float beta, float* c, Index ldc) {
  // oneDNN's GEMM is row-major, and a column-major matrix read row-major is its transpose:
  // C^T (n x m) = op(B)^T op(A)^T is the same call with the operands swapped.
  const dnnl_status_t status = dnnl_sgemm(transpose_b ? 'T' : 'N', transpose_a ? 'T' : 'N', n, m, k, alpha, b, ldb, a,
                                          lda, beta, c, ldc);
  if (status != dnnl_success)
    throw numeric_error(concat("dnnl_sgemm failed (status ", static_cast<int>(status), ") on a ", m, " x ", k, " by ",
                               k, " x ", n, " product"));
}

}  // namespace strata::detail
