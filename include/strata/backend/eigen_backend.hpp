#pragma once
/// \file eigen_backend.hpp
/// The default CPU backend: storage is an Eigen matrix, GEMM is Eigen's own (or OpenBLAS when
/// the build defines `EIGEN_USE_BLAS`; single precision on oneDNN when it defines
/// `STRATA_GEMM_ONEDNN`, backend/onednn_gemm.hpp), element-wise kernels are plain loops the compiler
/// vectorises, split across OpenMP threads when the build enables OpenMP.
///
/// Every backend offers the same small interface, which is all that layers, losses and
/// optimizers use. The contract, for a backend `B`:
///   B::scalar, B::matrix          element type; column-major `rows x cols` storage
///   B::parameter_matrix           storage of a parameter tensor or gradient: owns its elements
///                                 while a layer builds, then `place(ptr)` moves them into the
///                                 model's contiguous buffers (core/parameter_store.hpp); every
///                                 function below takes it wherever it takes a matrix
///   B::data(m), B::resize(m,r,c)  raw pointer (device pointer on a GPU); shape change
///   B::fill, B::copy              constant fill; deep copy (resizes the target)
///   B::upload, B::download        host_matrix <-> B::matrix
///   B::copy_to_host, copy_from_host   n elements between raw backend and host addresses
///   B::for_each(n, f)             f(i) for i in [0, n), any order, possibly in parallel;
///                                 f captures raw pointers by value and is marked STRATA_HD
///   B::for_each_element(r, c, f)  f(row, col) for every element of an r x c matrix, any order
///                                 (both take an optional `work`: elements one call handles, so
///                                 a call that handles several counts for as many when the
///                                 backend decides whether to split the loop across threads)
///   B::sum(n, f)                  sum of f(i) in double
///   B::count(n, f)                how many i in [0, n) have f(i) true
///   B::gemm(alpha, A, ta, B, tb, beta, C)   C = alpha op(A) op(B) + beta C
///   B::repeat_column(b, n, Y), B::row_sum(X, s)   the two row-structured kernels of a dense
///                                 layer (Y = n copies of column b; s = row sums of X)

#include <algorithm>

#include <Eigen/Core>

#include "../core/config.hpp"
#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "host_parameter_matrix.hpp"
#ifdef STRATA_GEMM_ONEDNN
#include "onednn_gemm.hpp"
#endif

namespace strata {

/// CPU backend over Eigen. `T` is the scalar type (float for training, double for gradient
/// checks).
template <class T = float>
struct EigenBackend {
  using scalar = T;
  /// Column-major `rows x cols` storage.
  using matrix = host_matrix<T>;
  /// A parameter tensor or gradient (host_parameter_matrix.hpp). The functions below are
  /// templates over the matrix type so that they take it as it is: converting it to `matrix`
  /// would copy it.
  using parameter_matrix = host_parameter_matrix<T>;

  static constexpr const char* name() { return "eigen"; }

  template <class M>
  static T* data(M& m) { return m.data(); }
  template <class M>
  static const T* data(const M& m) { return m.data(); }

  /// Resizes only when the shape changes, so buffers reused every step are allocated once.
  template <class M>
  static void resize(M& m, Index rows, Index cols) {
    if (m.rows() != rows || m.cols() != cols) m.resize(rows, cols);
  }
  template <class M>
  static void fill(M& m, T value) { m.setConstant(value); }
  template <class From, class To>
  static void copy(const From& from, To& to) {
    resize(to, from.rows(), from.cols());
    to = from;
  }
  template <class To>
  static void upload(const host_matrix<T>& from, To& to) { copy(from, to); }
  template <class From>
  static void download(const From& from, host_matrix<T>& to) {
    to.resize(from.rows(), from.cols());
    to = from;
  }

  /// `n` elements between backend memory and host memory (one and the same here).
  static void copy_to_host(const T* from, Index n, T* to) { std::copy(from, from + n, to); }
  static void copy_from_host(const T* from, Index n, T* to) { std::copy(from, from + n, to); }

  /// Loops over fewer elements than this run on the calling thread: waking the other threads
  /// costs more than splitting the loop saves.
  static constexpr Index parallel_elements = Index{1} << 16;

  /// Calls `f(i)` for every i in [0, n). `f` must not depend on the order of the calls.
  template <class F>
  static void for_each(Index n, F f, Index work = 1) {
#if defined(_OPENMP)
    if (n * work >= parallel_elements) {
      constexpr Index chunk = Index{1} << 14;  // 64 KiB of floats per task
      const Index chunks = (n + chunk - 1) / chunk;
#pragma omp parallel for schedule(static)
      for (Index c = 0; c < chunks; ++c) elements(c * chunk, std::min(n, (c + 1) * chunk), f);
      return;
    }
#endif
    elements(0, n, f);
  }

  /// `f(i)` for i in [begin, end). `f` is taken by value: a copy local to the calling thread,
  /// which GCC keeps in registers (through the shared closure of an OpenMP region it reloads the
  /// captures and gives up vectorising).
  template <class F>
  static void elements(Index begin, Index end, F f) {
    for (Index i = begin; i < end; ++i) f(i);
  }

  /// Calls `f(row, col)` for every element of a `rows x cols` column-major matrix: columns
  /// split across threads, rows in order inside a column, so per-element work that depends on
  /// the column only once (a sample id) is hoisted and the row loop vectorises.
  template <class F>
  static void for_each_element(Index rows, Index cols, F f, Index work = 1) {
#if defined(_OPENMP)
    if (rows * cols * work >= parallel_elements) {
#pragma omp parallel for schedule(static)
      for (Index j = 0; j < cols; ++j) column_elements(rows, j, f);
      return;
    }
#endif
    for (Index j = 0; j < cols; ++j) column_elements(rows, j, f);
  }

  /// `f(row, col)` down one column; `f` by value, as in `elements`.
  template <class F>
  static void column_elements(Index rows, Index col, F f) {
    for (Index r = 0; r < rows; ++r) f(r, col);
  }

  /// How many i in [0, n) have `f(i)` true (an integer count: any order, threads and vectors).
  template <class F>
  static Index count(Index n, F f) {
    Index total = 0;
#if defined(_OPENMP)
    if (n >= (Index{1} << 16)) {
      constexpr Index chunk = Index{1} << 14;
      const Index chunks = (n + chunk - 1) / chunk;
#pragma omp parallel for schedule(static) reduction(+ : total)
      for (Index c = 0; c < chunks; ++c) total += count_in(c * chunk, std::min(n, (c + 1) * chunk), f);
      return total;
    }
#endif
    return count_in(0, n, f);
  }

  /// `count` over [begin, end); `f` by value, as in `elements`.
  template <class F>
  static Index count_in(Index begin, Index end, F f) {
    Index total = 0;
    for (Index i = begin; i < end; ++i) total += f(i) ? 1 : 0;
    return total;
  }

  /// Sum of `f(i)` over [0, n), accumulated in double in index order (bit-reproducible).
  template <class F>
  static double sum(Index n, F f) {
    double total = 0.0;
    for (Index i = 0; i < n; ++i) total += static_cast<double>(f(i));
    return total;
  }

  /// `c = alpha * op(a) * op(b) + beta * c`, op = transpose when the flag is set. With beta == 0
  /// `c` is resized and its old content ignored; otherwise it must have the product's shape.
  /// Operands that do not fit throw shape_error (in every build, as on the Thrust backend).
  template <class MA, class MB, class MC>
  static void gemm(T alpha, const MA& a, bool transpose_a, const MB& b, bool transpose_b, T beta, MC& c) {
    const Index m = transpose_a ? a.cols() : a.rows(), k = transpose_a ? a.rows() : a.cols();
    const Index n = transpose_b ? b.rows() : b.cols();
    if ((transpose_b ? b.cols() : b.rows()) != k)
      throw shape_error(detail::concat("EigenBackend::gemm: inner dimensions differ (", k, " and ",
                                       transpose_b ? b.cols() : b.rows(), ")"));
    if (beta == T(0))
      resize(c, m, n);
    else if (c.rows() != m || c.cols() != n)
      throw shape_error(detail::concat("EigenBackend::gemm: C is ", shape_string(c.rows(), c.cols()), ", the product ",
                                       shape_string(m, n)));
#ifdef STRATA_GEMM_ONEDNN
    if constexpr (std::is_same_v<T, float>) {
      if (m > 0 && n > 0 && k > 0) {
        detail::onednn_sgemm(transpose_a, transpose_b, m, n, k, alpha, a.data(), a.rows(), b.data(), b.rows(), beta,
                             c.data(), c.rows());
        return;
      }
    }
#endif
    if (transpose_a && transpose_b)
      gemm_into(alpha, a.transpose(), b.transpose(), beta, c);
    else if (transpose_a)
      gemm_into(alpha, a.transpose(), b, beta, c);
    else if (transpose_b)
      gemm_into(alpha, a, b.transpose(), beta, c);
    else
      gemm_into(alpha, a, b, beta, c);
  }

  /// `y` becomes `rows x cols` with every column equal to `bias` (`rows x 1`): a dense layer's
  /// output starts as its bias and the GEMM adds `W X` to it (beta = 1), so the bias costs no
  /// pass of its own.
  template <class Bias>
  static void repeat_column(const Bias& bias, Index cols, matrix& y) {
    if (bias.cols() != 1)
      throw shape_error(detail::concat("EigenBackend::repeat_column: bias is ", shape_string(bias.rows(), bias.cols()),
                                       ", not one column"));
    const Index rows = bias.rows();
    resize(y, rows, cols);
    const T* b = bias.data();
    T* out = y.data();
    for_each_element(rows, cols, [b, out, rows](Index r, Index j) { out[j * rows + r] = b[r]; });
  }

  /// `out(i) = sum_j x(i, j)` in column order; out becomes `rows x 1`. Threads take blocks of
  /// rows, so each sum has the same order whatever the thread count.
  template <class Out>
  static void row_sum(const matrix& x, Out& out) {
    resize(out, x.rows(), 1);
    const Index rows = x.rows(), cols = x.cols();
    constexpr Index block = 64;
    const Index blocks = (rows + block - 1) / block;
#if defined(_OPENMP)
#pragma omp parallel for schedule(static) if (rows * cols >= (Index{1} << 16) && blocks > 1)
#endif
    for (Index k = 0; k < blocks; ++k) {
      const Index first = k * block, count = std::min(block, rows - first);
      auto sum = out.col(0).segment(first, count);
      if (cols == 0) {
        sum.setZero();
        continue;
      }
      sum = x.col(0).segment(first, count);
      for (Index j = 1; j < cols; ++j) sum += x.col(j).segment(first, count);
    }
  }

 private:
  template <class A, class B, class C>
  static void gemm_into(T alpha, const A& a, const B& b, T beta, C& c) {
    if (beta == T(0)) {  // c already has the product's shape (gemm)
      c.noalias() = alpha * a * b;
    } else {
      if (beta != T(1)) c *= beta;
      c.noalias() += alpha * a * b;
    }
  }
};

}  // namespace strata
