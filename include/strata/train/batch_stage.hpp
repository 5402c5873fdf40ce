#pragma once
/// \file batch_stage.hpp
/// Host-to-backend staging of minibatches: the one place that knows when a batch can be read in
/// place and when it must be copied or uploaded, with buffers allocated once and reused.

#include <type_traits>
#include <utility>

#include "../core/tensor.hpp"

namespace strata {

/// A minibatch as a model on backend B reads it.
template <class B>
class batch_stage {
 public:
  using matrix = typename B::matrix;
  using T = typename B::scalar;

  /// Columns [begin, begin + columns) of the host batch (x, y) on the backend; `whole` says they
  /// are all of its columns. A host backend reads a whole batch in place (no copy of what the
  /// loader just gathered) and copies a block into reused buffers; a device backend uploads,
  /// staging a block in reused host buffers first (no allocation per block).
  std::pair<const matrix*, const matrix*> stage(const host_matrix<T>& x, const host_matrix<T>& y, Index begin, Index columns,
                                                bool whole) {
    if constexpr (std::is_same_v<matrix, host_matrix<T>>) {
      if (whole) return {&x, &y};
      x_ = x.middleCols(begin, columns);
      y_ = y.middleCols(begin, columns);
    } else if (whole) {
      B::upload(x, x_);
      B::upload(y, y_);
    } else {
      block_x_ = x.middleCols(begin, columns);
      block_y_ = y.middleCols(begin, columns);
      B::upload(block_x_, x_);
      B::upload(block_y_, y_);
    }
    return {&x_, &y_};
  }

  /// An evaluation batch (inputs only) on the backend.
  const matrix& stage_inputs(const host_matrix<T>& x) {
    B::upload(x, x_);
    return x_;
  }

 private:
  host_matrix<T> block_x_, block_y_;
  matrix x_, y_;
};

}  // namespace strata
