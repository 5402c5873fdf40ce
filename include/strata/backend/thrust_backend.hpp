#pragma once
/// \file thrust_backend.hpp
/// The Thrust backend: storage is a `device_matrix` (a Thrust device vector), element-wise
/// kernels and reductions are Thrust algorithms over a counting iterator, GEMM is cuBLAS on CUDA
/// and Eigen's GEMM on Thrust's host systems.
///
/// One header, two builds:
///   - nvcc (THRUST_DEVICE_SYSTEM_CUDA, the default there): the toolkit's CCCL Thrust, kernels run
///     on the GPU, GEMM through cuBLAS. Link cuBLAS; compile with `--extended-lambda`.
///   - g++ with `-DTHRUST_DEVICE_SYSTEM=THRUST_DEVICE_SYSTEM_OMP -fopenmp` (or `_CPP`): Thrust's
///     "device" memory is host memory, so raw pointers are handed to Eigen for GEMM and kernels
///     run on OpenMP threads. This build is how the backend is tested on machines without a GPU.
/// It meets the contract stated in eigen_backend.hpp, so every layer, loss and optimizer runs on
/// it unchanged.

// Before any Thrust header, so that a missing device system gets this message rather than
// Thrust's complaint about CUDA headers (see device_matrix.hpp).
#if !defined(__CUDACC__) && !defined(THRUST_DEVICE_SYSTEM)
#error "strata: the Thrust backend without nvcc needs -DTHRUST_DEVICE_SYSTEM=THRUST_DEVICE_SYSTEM_OMP (with -fopenmp) or =THRUST_DEVICE_SYSTEM_CPP"
#endif

#include <type_traits>

#include <Eigen/Core>

#include <thrust/copy.h>
#include <thrust/execution_policy.h>
#include <thrust/fill.h>
#include <thrust/for_each.h>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/transform_reduce.h>

#include "../core/config.hpp"
#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "cuda_device.hpp"
#include "device_matrix.hpp"

#if THRUST_DEVICE_SYSTEM == THRUST_DEVICE_SYSTEM_CUDA
#if !defined(__CUDACC__)
#error "strata: Thrust's CUDA device system needs nvcc; with g++ use -DTHRUST_DEVICE_SYSTEM=THRUST_DEVICE_SYSTEM_OMP"
#endif
/// Defined to 1 when ThrustBackend runs on a CUDA GPU, 0 when its "device" is the host.
#define STRATA_THRUST_CUDA 1
#include <climits>

#include <cublas_v2.h>
#include <thrust/system/cuda/execution_policy.h>
#else
#define STRATA_THRUST_CUDA 0
#endif

namespace strata {

namespace detail {

/// `f(i)` as a double, so that Thrust reduces in double whatever `f` returns.
template <class F>
struct as_double_term {
  F f;
  STRATA_HD double operator()(Index i) const { return static_cast<double>(f(i)); }
};

/// `f(row, col)` from a flat column-major element index.
template <class F>
struct element_of {
  F f;
  Index rows;
  STRATA_HD void operator()(Index i) const { f(i % rows, i / rows); }
};

/// 1 where `f(i)` holds, else 0.
template <class F>
struct as_count_term {
  F f;
  STRATA_HD Index operator()(Index i) const { return f(i) ? 1 : 0; }
};

/// Addition of counts.
struct add_counts {
  STRATA_HD Index operator()(Index a, Index b) const { return a + b; }
};

/// Addition of doubles. Written out because CCCL 3 and Thrust 1.17 disagree on which functional
/// objects exist and where.
struct add_doubles {
  STRATA_HD double operator()(double a, double b) const { return a + b; }
};

#if STRATA_THRUST_CUDA
/// Throws a strata::error naming the failed cuBLAS call and the status.
inline void check_cublas(cublasStatus_t status, const char* call) {
  if (status != CUBLAS_STATUS_SUCCESS)
    throw error(concat("cuBLAS: ", call, " failed with ", cublasGetStatusName(status), " (",
                       cublasGetStatusString(status), ")"));
}

/// The process's cuBLAS handle, created on first use (creating one costs milliseconds and
/// initialises the GPU, so it is not done at program start or per call). It is bound to the
/// device current at creation and uses the default stream, the stream Thrust's algorithms use,
/// so GEMMs and element-wise kernels stay ordered without synchronisation. It is deliberately
/// never destroyed: at static destruction the CUDA runtime may already be torn down, and the
/// driver releases it with the process.
inline cublasHandle_t cublas_handle() {
  static const cublasHandle_t handle = [] {
    cublasHandle_t h = nullptr;
    check_cublas(cublasCreate(&h), "cublasCreate");
    return h;
  }();
  return handle;
}

/// cuBLAS takes `int` sizes; larger ones are reported rather than truncated.
inline int cublas_size(Index n, const char* what) {
  if (n > static_cast<Index>(INT_MAX))
    throw shape_error(concat("ThrustBackend::gemm: ", what, " = ", n, " exceeds cuBLAS's int range"));
  return static_cast<int>(n);
}

inline cublasStatus_t cublas_gemm(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                                  const float* alpha, const float* a, int lda, const float* b,
                                  int ldb, const float* beta, float* c, int ldc) {
  return cublasSgemm(cublas_handle(), ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
inline cublasStatus_t cublas_gemm(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                                  const double* alpha, const double* a, int lda, const double* b,
                                  int ldb, const double* beta, double* c, int ldc) {
  return cublasDgemm(cublas_handle(), ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
#endif

}  // namespace detail

/// Thrust backend. `T` is the scalar type: float or double (the types cuBLAS provides) under
/// CUDA; any Eigen scalar on the host systems.
template <class T = float>
struct ThrustBackend {
  using scalar = T;
  /// Column-major `rows x cols` storage in device memory.
  using matrix = device_matrix<T>;
  /// Parameter tensors and gradients: device matrices the model places in its buffers.
  using parameter_matrix = device_matrix<T>;

#if STRATA_THRUST_CUDA
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "strata::ThrustBackend on CUDA supports float and double (cuBLAS GEMM)");
#endif

  /// "thrust-cuda", "thrust-omp", "thrust-tbb" or "thrust-cpp": the device system in use.
  static constexpr const char* name() {
#if STRATA_THRUST_CUDA
    return "thrust-cuda";
#elif THRUST_DEVICE_SYSTEM == THRUST_DEVICE_SYSTEM_OMP
    return "thrust-omp";
#elif THRUST_DEVICE_SYSTEM == THRUST_DEVICE_SYSTEM_TBB
    return "thrust-tbb";
#else
    return "thrust-cpp";
#endif
  }

  static T* data(matrix& m) { return m.data(); }
  static const T* data(const matrix& m) { return m.data(); }

  /// Changes the shape; the allocation is reused unless the element count grows beyond it.
  static void resize(matrix& m, Index rows, Index cols) { m.resize(rows, cols); }

  static void fill(matrix& m, T value) {
#if STRATA_THRUST_CUDA
    thrust::fill(thrust::cuda::par_nosync, m.begin(), m.end(), value);
#else
    thrust::fill(thrust::device, m.begin(), m.end(), value);
#endif
  }

  /// Deep copy; `to` takes the shape of `from`.
  static void copy(const matrix& from, matrix& to) {
    if (&from == &to) return;
    resize(to, from.rows(), from.cols());
    // Nothing to copy: Thrust's host systems would pass empty storage's null pointer to memmove.
    if (from.size() == 0) return;
#if STRATA_THRUST_CUDA
    thrust::copy(thrust::cuda::par_nosync, from.begin(), from.end(), to.begin());
#else
    thrust::copy(thrust::device, from.begin(), from.end(), to.begin());
#endif
  }

  /// Host to device. Synchronous: `from` may be released as soon as this returns.
  static void upload(const host_matrix<T>& from, matrix& to) {
    resize(to, from.rows(), from.cols());
    if (from.size() == 0) return;  // (memmove from a null pointer, as in copy)
    thrust::copy(from.data(), from.data() + from.size(), to.begin());
  }

  /// Device to host; waits for the kernels that produce `from`.
  static void download(const matrix& from, host_matrix<T>& to) {
    to.resize(from.rows(), from.cols());
    if (from.size() == 0) return;  // (memmove to a null pointer, as in copy)
    thrust::copy(from.begin(), from.end(), to.data());
  }

  /// `n` elements at device address `from` to host memory `to` (strategies stage spans of the
  /// parameter buffers through the host for MPI); waits for the kernels that produce them.
  static void copy_to_host(const T* from, Index n, T* to) {
    if (n > 0) thrust::copy(thrust::device_ptr<const T>(from), thrust::device_ptr<const T>(from) + n, to);
  }
  /// `n` elements from host memory `from` to device address `to`.
  static void copy_from_host(const T* from, Index n, T* to) {
    if (n > 0) thrust::copy(from, from + n, thrust::device_ptr<T>(to));
  }

  /// Calls `f(i)` for every i in [0, n), in any order and in parallel. `f` is a STRATA_HD lambda
  /// or functor capturing raw device pointers by value.
  template <class F>
  static void for_each(Index n, F f, Index work = 1) {
    if (n <= 0) return;
    const thrust::counting_iterator<Index> first(0), last(n);
#if STRATA_THRUST_CUDA
    // No synchronisation after the launch: every kernel and every cuBLAS call goes to the same
    // default stream, so they run in order, and downloads and reductions wait for the results.
    (void)work;  // a GPU runs every loop in parallel
    thrust::for_each(thrust::cuda::par_nosync, first, last, f);
#else
    // As in EigenBackend: below this size starting a parallel region costs more than it saves.
    if (n * work < host_parallel_threshold)
      thrust::for_each(thrust::seq, first, last, f);
    else
      thrust::for_each(thrust::device, first, last, f);
#endif
  }

  /// Calls `f(row, col)` for every element of a `rows x cols` column-major matrix, in any order
  /// and in parallel (one flat index space: a GPU thread per element).
  template <class F>
  static void for_each_element(Index rows, Index cols, F f, Index work = 1) {
    if (rows <= 0) return;
    for_each(rows * cols, detail::element_of<F>{f, rows}, work);
  }

  /// How many i in [0, n) have `f(i)` true.
  template <class F>
  static Index count(Index n, F f) {
    return reduce(n, detail::as_count_term<F>{f}, Index{0}, detail::add_counts{});
  }

  /// Sum of `f(i)` over [0, n), accumulated in double. The summation order is Thrust's (a tree
  /// on the GPU, one partial sum per thread on OpenMP), so the result may differ from
  /// EigenBackend's in the last bits.
  template <class F>
  static double sum(Index n, F f) {
    return reduce(n, detail::as_double_term<F>{f}, 0.0, detail::add_doubles{});
  }

  /// `term(0) op term(1) op ... op term(n-1)` starting from `zero`, on the device (or, on the
  /// OpenMP host system, serially below the parallel threshold).
  template <class V, class Term, class Op>
  static V reduce(Index n, Term term, V zero, Op op) {
    if (n <= 0) return zero;
    const thrust::counting_iterator<Index> first(0), last(n);
#if STRATA_THRUST_CUDA
    return thrust::transform_reduce(thrust::device, first, last, term, zero, op);
#else
    if (n < host_parallel_threshold) return thrust::transform_reduce(thrust::seq, first, last, term, zero, op);
    return thrust::transform_reduce(thrust::device, first, last, term, zero, op);
#endif
  }

  /// `c = alpha * op(a) * op(b) + beta * c`, op = transpose when the flag is set. With beta == 0
  /// `c` is resized and its old content ignored (even NaN); otherwise it must already have the
  /// shape of the product.
  static void gemm(T alpha, const matrix& a, bool transpose_a, const matrix& b, bool transpose_b,
                   T beta, matrix& c) {
    const Index m = transpose_a ? a.cols() : a.rows();
    const Index k = transpose_a ? a.rows() : a.cols();
    const Index kb = transpose_b ? b.cols() : b.rows();
    const Index n = transpose_b ? b.rows() : b.cols();
    if (k != kb)
      throw shape_error(detail::concat("ThrustBackend::gemm: op(a) is ", shape_string(m, k), " but op(b) is ",
                                       shape_string(kb, n)));
    if (beta == T(0))
      resize(c, m, n);
    else if (c.rows() != m || c.cols() != n)
      throw shape_error(detail::concat("ThrustBackend::gemm: c is ", shape_string(c.rows(), c.cols()),
                                       " but the product is ", shape_string(m, n)));
    if (m == 0 || n == 0) return;
#if STRATA_THRUST_CUDA
    // cuBLAS is column-major like device_matrix; leading dimensions must be at least 1 even for
    // empty operands.
    const auto ld = [](const matrix& x) { return detail::cublas_size(x.rows() > 0 ? x.rows() : 1, "leading dimension"); };
    detail::check_cublas(
        detail::cublas_gemm(transpose_a ? CUBLAS_OP_T : CUBLAS_OP_N, transpose_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                            detail::cublas_size(m, "m"), detail::cublas_size(n, "n"), detail::cublas_size(k, "k"),
                            &alpha, a.data(), ld(a), b.data(), ld(b), &beta, c.data(), ld(c)),
        sizeof(T) == sizeof(float) ? "cublasSgemm" : "cublasDgemm");
#else
    // Device memory is host memory here: view it through Eigen maps and use Eigen's GEMM.
    using const_map = Eigen::Map<const host_matrix<T>>;
    const const_map am(a.data(), a.rows(), a.cols()), bm(b.data(), b.rows(), b.cols());
    Eigen::Map<host_matrix<T>> cm(c.data(), m, n);
    if (transpose_a && transpose_b)
      host_gemm(alpha, am.transpose(), bm.transpose(), beta, cm);
    else if (transpose_a)
      host_gemm(alpha, am.transpose(), bm, beta, cm);
    else if (transpose_b)
      host_gemm(alpha, am, bm.transpose(), beta, cm);
    else
      host_gemm(alpha, am, bm, beta, cm);
#endif
  }

  /// `y` becomes `rows x cols` with every column equal to `bias` (`rows x 1`); see EigenBackend.
  static void repeat_column(const matrix& bias, Index cols, matrix& y) {
    if (bias.cols() != 1)
      throw shape_error(detail::concat("ThrustBackend::repeat_column: bias is ", shape_string(bias.rows(), bias.cols()),
                                       ", not one column"));
    const Index rows = bias.rows();
    resize(y, rows, cols);
    T* out = y.data();
    const T* b = bias.data();
    for_each(y.size(), [out, b, rows] STRATA_HD(Index i) { out[i] = b[i % rows]; });
  }

  /// `out(i) = sum_j x(i, j)`; out becomes `rows x 1`. One thread per row: consecutive threads
  /// read consecutive addresses of each column, so the loads coalesce on a GPU.
  static void row_sum(const matrix& x, matrix& out) {
    resize(out, x.rows(), 1);
    const Index rows = x.rows(), cols = x.cols();
    const T* in = x.data();
    T* s = out.data();
    for_each(rows, [in, s, rows, cols] STRATA_HD(Index i) {
      T total = T(0);
      for (Index j = 0; j < cols; ++j) total += in[i + j * rows];
      s[i] = total;
    });
  }

 private:
#if !STRATA_THRUST_CUDA
  static constexpr Index host_parallel_threshold = Index{1} << 16;

  template <class A, class B, class C>
  static void host_gemm(T alpha, const A& a, const B& b, T beta, C& c) {
    if (beta == T(0)) {
      c.noalias() = alpha * a * b;
    } else {
      if (beta != T(1)) c *= beta;
      c.noalias() += alpha * a * b;
    }
  }
#endif
};

}  // namespace strata
