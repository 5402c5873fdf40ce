#pragma once
/// \file mae.hpp
/// Mean absolute error.

#include "common.hpp"

namespace strata {

/// Absolute error `|p - t|` per element (PyTorch's L1Loss); gradient `sign(p - t) / normalizer`,
/// 0 where the prediction is exact.
struct MAE {
  static constexpr const char* name = "MAE";

  /// Returns the sum of `|p - t|` over all elements and writes `gradient` (resized to the
  /// prediction's shape) = d(sum / normalizer)/d(prediction). Throws shape_error when the
  /// shapes differ, config_error when `normalizer` is not positive.
  template <class B>
  double evaluate(const typename B::matrix& prediction, const typename B::matrix& target,
                  typename B::matrix& gradient, double normalizer) const {
    using T = typename B::scalar;
    detail::check_loss_shapes(name, prediction, target);
    detail::check_normalizer(name, normalizer);
    const Index n = prediction.rows() * prediction.cols();
    B::resize(gradient, prediction.rows(), prediction.cols());
    const T* p = B::data(prediction);
    const T* t = B::data(target);
    T* g = B::data(gradient);
    const T scale = static_cast<T>(1.0 / normalizer);
    B::for_each(n, [p, t, g, scale] STRATA_HD(Index i) { g[i] = scale * detail::sign(p[i] - t[i]); });
    return B::sum(n, [p, t] STRATA_HD(Index i) {
      return detail::magnitude(static_cast<double>(p[i]) - static_cast<double>(t[i]));
    });
  }
};

}  // namespace strata
