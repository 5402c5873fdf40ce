#pragma once
/// \file common.hpp
/// What every loss shares: the loss contract and the argument checks.
///
/// A loss is a policy struct (MSE, MAE, Huber) with
///   `static constexpr const char* name`   the name used in messages and logs
///   `template <class B> double evaluate(const matrix& prediction, const matrix& target,
///                                       matrix& gradient, double normalizer) const`
/// `evaluate` returns the *sum* of the element-wise loss over every element, not the mean: data-
/// parallel ranks each sum their shard and add the sums, and the trainer divides once by the
/// global count. The gradient it writes is already divided: `gradient = d(sum / normalizer) /
/// d(prediction)`, so with `normalizer` = the global element count every rank back-propagates its
/// share of the gradient of the global mean. Sums are accumulated in double whatever B::scalar.

#include <string>

#include "../core/config.hpp"
#include "../core/error.hpp"

namespace strata {
namespace detail {

/// Throws a shape_error naming the loss and both shapes when they differ.
template <class Matrix>
void check_loss_shapes(const char* loss, const Matrix& prediction, const Matrix& target) {
  if (prediction.rows() != target.rows() || prediction.cols() != target.cols())
    throw shape_error(concat("loss ", loss, ": prediction is ",
                             shape_string(prediction.rows(), prediction.cols()), " but target is ",
                             shape_string(target.rows(), target.cols())));
}

/// Rejects a normalizer that is not a positive finite number (a zero batch would otherwise
/// turn every gradient into infinity or NaN without an error).
inline void check_normalizer(const char* loss, double normalizer) {
  // `normalizer - normalizer == 0` is false for infinity and NaN.
  if (!(normalizer > 0.0) || !(normalizer - normalizer == 0.0))
    throw config_error(concat("loss ", loss, ": normalizer must be positive and finite, got ",
                              normalizer));
}

/// -1, 0 or 1 with the sign of x (0 at 0, so MAE's subgradient at a perfect prediction is 0, as
/// PyTorch's).
template <class T>
STRATA_HD inline T sign(T x) {
  return x > T(0) ? T(1) : (x < T(0) ? T(-1) : T(0));
}

/// |x|, written out so that it is the same function on host and device.
template <class T>
STRATA_HD inline T magnitude(T x) {
  return x < T(0) ? -x : x;
}

}  // namespace detail
}  // namespace strata
