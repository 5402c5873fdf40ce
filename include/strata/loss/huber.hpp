#pragma once
/// \file huber.hpp
/// Huber loss: quadratic near the target, linear far from it, so outliers pull with a bounded
/// force.

#include "common.hpp"

namespace strata {

/// Huber loss with threshold `delta` (PyTorch's HuberLoss, default delta = 1): per element, with
/// d = p - t, `0.5 d^2` when |d| < delta and `delta (|d| - 0.5 delta)` otherwise; the gradient
/// is d clamped to [-delta, delta], divided by the normalizer.
struct Huber {
  static constexpr const char* name = "Huber";

  /// Where the loss turns from quadratic to linear; must be positive.
  double delta = 1.0;

  /// Returns the sum of the Huber loss over all elements and writes `gradient` (resized to the
  /// prediction's shape) = d(sum / normalizer)/d(prediction). Throws shape_error when the
  /// shapes differ, config_error when `delta` or `normalizer` is not positive.
  template <class B>
  double evaluate(const typename B::matrix& prediction, const typename B::matrix& target,
                  typename B::matrix& gradient, double normalizer) const {
    using T = typename B::scalar;
    detail::check_loss_shapes(name, prediction, target);
    detail::check_normalizer(name, normalizer);
    if (!(delta > 0.0))
      throw config_error(detail::concat("loss ", name, ": delta must be positive, got ", delta));
    const Index n = prediction.rows() * prediction.cols();
    B::resize(gradient, prediction.rows(), prediction.cols());
    const T* p = B::data(prediction);
    const T* t = B::data(target);
    T* g = B::data(gradient);
    const T scale = static_cast<T>(1.0 / normalizer);
    const T limit = static_cast<T>(delta);
    B::for_each(n, [p, t, g, scale, limit] STRATA_HD(Index i) {
      const T d = p[i] - t[i];
      g[i] = scale * (d > limit ? limit : (d < -limit ? -limit : d));
    });
    const double k = delta;  // a copy, so that the lambda does not capture `this`
    return B::sum(n, [p, t, k] STRATA_HD(Index i) {
      const double a = detail::magnitude(static_cast<double>(p[i]) - static_cast<double>(t[i]));
      return a < k ? 0.5 * a * a : k * (a - 0.5 * k);
    });
  }
};

}  // namespace strata
