#pragma once
/// \file sparse_input_dense.hpp
/// `SparseInputDense`: a dense layer `Y = W X + b` for inputs that are mostly zero, such as
/// Morgan fingerprints (2,048 bits of which a molecule sets 2-5%). It computes the same function
/// as `Dense` but by the input's non-zeros:
///   forward   y_j = b + sum over non-zero x_ij of x_ij W(:, i)   (a few dozen weight columns
///             per sample instead of all of them: ~30x fewer FLOPs at 3% density)
///   backward  dW(:, i) = sum over samples j with x_ij != 0 of x_ij dy_j   (only those columns;
///             the others are zero), db = row sums of dy, dX = Wᵀ dY only when asked (dense).
/// The non-zeros are found by one pass over the input, so the input stays an ordinary dense
/// batch and the layer drops into any model in place of the first Dense. Host backends only.

#include <algorithm>
#include <vector>

#include "dense.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace strata {

template <class B>
class sparse_input_dense_layer;

/// A `Dense<Width>` whose input is sparse: same options, same initial weights for the same seed.
template <Index Width = dynamic>
struct SparseInputDense : Dense<Width> {
  static constexpr const char* kind = "SparseInputDense";
  template <class B>
  using impl = sparse_input_dense_layer<B>;
  using Dense<Width>::Dense;
};

template <class B>
class sparse_input_dense_layer {
 public:
  using matrix = typename B::matrix;
  using T = typename B::scalar;
  static_assert(detail::host_storage<B>, "SparseInputDense runs on host backends (EigenBackend)");

  template <Index W>
  explicit sparse_input_dense_layer(const SparseInputDense<W>& spec) : width_(spec.width), init_(spec.init), bias_(spec.bias) {}

  Index build(build_context& ctx, Index input_width) {
    path_ = detail::draw_dense_weight<B>(ctx, width_, input_width, init_, weight_);
    detail::zero_dense_state<B>(weight_grad_, bias_value_, bias_grad_, width_, input_width, bias_);
    return width_;
  }

  const matrix& forward(const matrix& x, const pass_info&) {
    if (x.rows() != weight_.cols())
      throw shape_error(detail::concat("layer '", path_, "': expects input of ", weight_.cols(), " rows, got ",
                                       shape_string(x.rows(), x.cols())));
    index_by_sample(x);
    const Index n = x.cols();
    B::resize(output_, width_, n);
    // Sample by sample: the output column stays in L1 while its few dozen weight columns are
    // added. (Row tiles of W kept in L2 were measured slower: their short output segments,
    // one column stride apart, miss on every store.)
#if defined(_OPENMP)
#pragma omp parallel for schedule(static) if (n >= 64)
#endif
    for (Index j = 0; j < n; ++j) {
      auto y = output_.col(j);
      if (bias_) y = bias_value_.col(0);
      else y.setZero();
      for (Index k = sample_start_[static_cast<std::size_t>(j)]; k < sample_start_[static_cast<std::size_t>(j) + 1]; ++k)
        y.noalias() += values_[static_cast<std::size_t>(k)] * weight_.col(inputs_[static_cast<std::size_t>(k)]);
    }
    return output_;
  }

  const matrix& backward(const matrix& x, const matrix& dy, const pass_info& pass, bool need_dx) {
    index_by_input(x.rows());
    B::fill(weight_grad_, T(0));
    const Index inputs = x.rows();
#if defined(_OPENMP)
#pragma omp parallel for schedule(dynamic, 16) if (dy.cols() >= 64)
#endif
    for (Index i = 0; i < inputs; ++i) {
      const Index begin = input_start_[static_cast<std::size_t>(i)], end = input_start_[static_cast<std::size_t>(i) + 1];
      if (begin == end) continue;
      auto g = weight_grad_.col(i);
      for (Index k = begin; k < end; ++k)
        g.noalias() += by_input_value_[static_cast<std::size_t>(k)] * dy.col(by_input_sample_[static_cast<std::size_t>(k)]);
    }
    pass.gradient_ready(weight_grad_);
    if (bias_) {
      B::row_sum(dy, bias_grad_);
      pass.gradient_ready(bias_grad_);
    }
    if (need_dx) B::gemm(T(1), weight_, true, dy, false, T(0), input_grad_);
    return input_grad_;
  }

  template <class F>
  void for_each_parameter(F&& f) {
    f(parameter<B>{path_ + ".weight", &weight_, &weight_grad_});
    if (bias_) f(parameter<B>{path_ + ".bias", &bias_value_, &bias_grad_});
  }
  template <class F>
  void for_each_buffer(F&&) {}

  const matrix& weight() const { return weight_; }
  /// Non-zero inputs of the last forward pass (its cost is proportional to this).
  Index nonzeros() const { return sample_start_.empty() ? 0 : sample_start_.back(); }

 private:
  /// The non-zeros of every sample, sample by sample (CSR over samples).
  void index_by_sample(const matrix& x) {
    const Index n = x.cols(), rows = x.rows();
    sample_start_.assign(static_cast<std::size_t>(n) + 1, 0);
    const T* data = x.data();
    Index* start = sample_start_.data();
    // Two passes over the columns in parallel (count, then place after a prefix sum), so the
    // scan of the dense batch is not the serial part of the layer.
#if defined(_OPENMP)
#pragma omp parallel for schedule(static) if (n >= 64)
#endif
    for (Index j = 0; j < n; ++j) {
      Index count = 0;
      const T* column = data + j * rows;
      for (Index i = 0; i < rows; ++i) count += column[i] != T(0);
      start[j + 1] = count;
    }
    for (Index j = 0; j < n; ++j) start[j + 1] += start[j];
    inputs_.resize(static_cast<std::size_t>(sample_start_.back()));
    values_.resize(inputs_.size());
    Index* inputs = inputs_.data();
    T* values = values_.data();
#if defined(_OPENMP)
#pragma omp parallel for schedule(static) if (n >= 64)
#endif
    for (Index j = 0; j < n; ++j) {
      Index k = start[j];
      const T* column = data + j * rows;
      for (Index i = 0; i < rows; ++i)
        if (column[i] != T(0)) {
          inputs[k] = i;
          values[k++] = column[i];
        }
    }
  }

  /// The same non-zeros regrouped by input (CSC), samples in ascending order, for the gradient.
  void index_by_input(Index inputs) {
    input_start_.assign(static_cast<std::size_t>(inputs) + 1, 0);
    for (const Index i : inputs_) ++input_start_[static_cast<std::size_t>(i) + 1];
    for (std::size_t i = 0; i < static_cast<std::size_t>(inputs); ++i) input_start_[i + 1] += input_start_[i];
    by_input_sample_.resize(inputs_.size());
    by_input_value_.resize(inputs_.size());
    fill_.assign(input_start_.begin(), input_start_.end() - 1);
    const auto samples = static_cast<Index>(sample_start_.size()) - 1;
    for (Index j = 0; j < samples; ++j)
      for (Index k = sample_start_[static_cast<std::size_t>(j)]; k < sample_start_[static_cast<std::size_t>(j) + 1]; ++k) {
        const auto slot = static_cast<std::size_t>(fill_[static_cast<std::size_t>(inputs_[static_cast<std::size_t>(k)])]++);
        by_input_sample_[slot] = j;
        by_input_value_[slot] = values_[static_cast<std::size_t>(k)];
      }
  }

  Index width_;
  Init init_;
  bool bias_;
  std::string path_;
  matrix weight_, weight_grad_, bias_value_, bias_grad_;
  matrix output_, input_grad_;
  std::vector<Index> sample_start_, inputs_, input_start_, by_input_sample_, fill_;
  std::vector<T> values_, by_input_value_;
};

}  // namespace strata
