#pragma once
/// \file onednn_gemm.hpp
/// Single-precision GEMM on oneDNN: the engine of EigenBackend<float>'s products in a build that
/// defines `STRATA_GEMM_ONEDNN` (CMake option STRATA_GEMM_ONEDNN, on by default where oneDNN is
/// found). Measured at the Combo training shapes on 2 cores of an AVX-512 EPYC (the 16 forward,
/// weight-gradient and input-gradient products of one step, batch 256, best of 5): 100-112 ms
/// against OpenBLAS 0.3.21's 105-121 ms over three runs.
///
/// Two oneDNN entry points, each where it was faster (2-core Zen 4, oneDNN 2.7, best of 15):
///   - `dnnl_sgemm` for most products;
///   - the matmul primitive for `C = A^T B` (a dense layer's input gradient W^T dY): 1.05-1.16x
///     dnnl_sgemm at 1,000 x 256 x 1,000, 3,000 x 256 x 1,000 and 1,000 x 512 x 1,000 on 1 and
///     2 threads, where the weight-gradient and forward shapes were 0.9-1.0x. A primitive is made
///     once per shape and kept (per thread; a model meets a handful of shapes).
///
/// oneDNN threads with OpenMP (Debian's build), so the products use the calling thread's OpenMP
/// thread count, as Strata's element-wise loops do (core/math_threads.hpp).

#include <map>
#include <tuple>

#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl.hpp>

#include "../core/error.hpp"
#include "../core/tensor.hpp"

namespace strata::detail {

/// `C (m x n) = A^T B` on a matmul primitive kept per shape and leading dimensions. Column-major
/// C is row-major C^T = B^T A: oneDNN's source is B^T (n x k: element (j, p) at j ldb + p), its
/// weights A (k x m: element (p, i) at p + i lda), its destination C^T (element (j, i) at
/// j ldc + i).
class transposed_a_products {
 public:
  void run(Index m, Index n, Index k, const float* a, Index lda, const float* b, Index ldb, float* c, Index ldc) {
    using dims = dnnl::memory::dims;
    using dt = dnnl::memory::data_type;
    const key shape{m, n, k, lda, ldb, ldc};
    auto found = plans_.find(shape);
    if (found == plans_.end()) {
      if (plans_.size() >= 64) plans_.clear();  // a model meets few shapes; bound what a sweep of them keeps
      const dnnl::memory::desc src({n, k}, dt::f32, dims{ldb, 1}), weights({k, m}, dt::f32, dims{1, lda}),
          dst({n, m}, dt::f32, dims{ldc, 1});
      const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src, weights, dst), engine_);
      found = plans_.emplace(shape, plan{src, weights, dst, dnnl::matmul(pd)}).first;
    }
    plan& p = found->second;
    dnnl::memory src(p.src, engine_, const_cast<float*>(b)), weights(p.weights, engine_, const_cast<float*>(a)),
        dst(p.dst, engine_, c);
    p.matmul.execute(stream_, {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DST, dst}});
    stream_.wait();
  }

  /// The calling thread's instance.
  static transposed_a_products& of_this_thread() {
    thread_local transposed_a_products products;
    return products;
  }

 private:
  using key = std::tuple<Index, Index, Index, Index, Index, Index>;
  struct plan {
    dnnl::memory::desc src, weights, dst;
    dnnl::matmul matmul;
  };
  dnnl::engine engine_{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream_{engine_};
  std::map<key, plan> plans_;
};

/// Column-major `C (m x n) = alpha op(A) op(B) + beta C`, op = transpose where the flag is set;
/// `lda`, `ldb`, `ldc`: the stored row counts of A, B and C. Every dimension must be positive.
inline void onednn_sgemm(bool transpose_a, bool transpose_b, Index m, Index n, Index k, float alpha, const float* a,
                         Index lda, const float* b, Index ldb, float beta, float* c, Index ldc) {
  if (transpose_a && !transpose_b && alpha == 1.0f && beta == 0.0f) {
    try {
      transposed_a_products::of_this_thread().run(m, n, k, a, lda, b, ldb, c, ldc);
      return;
    } catch (const dnnl::error& e) {
      throw numeric_error(concat("oneDNN matmul failed on a ", k, " x ", m, " (transposed) by ", k, " x ", n,
                                 " product: ", e.what()));
    }
  }
  // oneDNN's GEMM is row-major, and a column-major matrix read row-major is its transpose:
  // C^T (n x m) = op(B)^T op(A)^T is the same call with the operands swapped.
  const dnnl_status_t status = dnnl_sgemm(transpose_b ? 'T' : 'N', transpose_a ? 'T' : 'N', n, m, k, alpha, b, ldb, a,
                                          lda, beta, c, ldc);
  if (status != dnnl_success)
    throw numeric_error(concat("dnnl_sgemm failed (status ", static_cast<int>(status), ") on a ", m, " x ", k, " by ",
                               k, " x ", n, " product"));
}

}  // namespace strata::detail
