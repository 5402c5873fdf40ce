#pragma once
/// \file dataset.hpp
/// What the trainer needs from data: a number of samples and a way to gather any set of them
/// into `features x samples` and `targets x samples` host matrices. Large datasets (entity
/// tables joined by index tuples) implement the same two calls without ever building the full
/// matrix; `MatrixDataset` is the in-memory case.
///
/// The dataset concept, for a type D with scalar T:
///   Index D::size() const;  Index D::input_width() const;  Index D::target_width() const;
///   void D::gather(const Index* indices, Index count, host_matrix<T>& x, host_matrix<T>& y) const;

#include <utility>

#include "../core/error.hpp"
#include "../core/tensor.hpp"

namespace strata {

/// A dataset held as two host matrices, one sample per column.
template <class T = float>
class MatrixDataset {
 public:
  using scalar = T;

  MatrixDataset() = default;
  /// `features` is `input_width x samples`, `targets` is `target_width x samples`.
  MatrixDataset(host_matrix<T> features, host_matrix<T> targets)
      : features_(std::move(features)), targets_(std::move(targets)) {
    if (features_.cols() != targets_.cols())
      throw shape_error(detail::concat("MatrixDataset: ", features_.cols(), " feature columns but ",
                                       targets_.cols(), " target columns"));
  }

  Index size() const { return features_.cols(); }
  Index input_width() const { return features_.rows(); }
  Index target_width() const { return targets_.rows(); }
  const host_matrix<T>& features() const { return features_; }
  const host_matrix<T>& targets() const { return targets_; }

  /// Copies the samples `indices[0..count)` into the columns of `x` and `y` (resized as needed).
  void gather(const Index* indices, Index count, host_matrix<T>& x, host_matrix<T>& y) const {
    if (x.rows() != input_width() || x.cols() != count) x.resize(input_width(), count);
    if (y.rows() != target_width() || y.cols() != count) y.resize(target_width(), count);
    for (Index j = 0; j < count; ++j) {
      const Index i = indices[j];
      if (i < 0 || i >= size())
        throw data_error(detail::concat("MatrixDataset: sample index ", i, " out of range [0, ", size(), ")"));
      x.col(j) = features_.col(i);
      y.col(j) = targets_.col(i);
    }
  }

 private:
  host_matrix<T> features_, targets_;
};

}  // namespace strata
