#pragma once
/// \file clip.hpp
/// Gradient clipping by global norm (PyTorch's torch.nn.utils.clip_grad_norm_ with the 2-norm).

#include <cmath>
#include <vector>

#include "common.hpp"

namespace strata {

/// Rescales all gradients together so that their global 2-norm (over every element of every
/// parameter) is at most `max_norm`, and returns the norm *before* clipping. As PyTorch, the
/// scale is `max_norm / (norm + 1e-6)` and is applied only when it is below 1. Squares are summed
/// in double. When the norm is not finite the gradients are left untouched and the norm is
/// returned, so that the caller can detect it and skip the step (PyTorch would multiply by a
/// NaN or zero scale). Throws config_error for a negative or non-finite `max_norm`. With data
/// parallelism, call it after the gradients have been all-reduced, so every rank clips alike.
template <class B>
double clip_grad_norm(std::vector<parameter<B>>& params, double max_norm) {
  using T = typename B::scalar;
  detail::require_non_negative("clip_grad_norm", "max_norm", max_norm);
  double sum_of_squares = 0.0;
  for (auto& p : params) {
    const T* g = B::data(*p.gradient);
    sum_of_squares += B::sum(p.gradient->rows() * p.gradient->cols(), [g] STRATA_HD(Index i) {
      const double x = static_cast<double>(g[i]);
      return x * x;
    });
  }
  const double norm = std::sqrt(sum_of_squares);
  if (!detail::finite_value(norm)) return norm;
  const double scale = max_norm / (norm + 1e-6);
  if (scale < 1.0) {
    const T factor = static_cast<T>(scale);
    for (auto& p : params) {
      T* g = B::data(*p.gradient);
      B::for_each(p.gradient->rows() * p.gradient->cols(),
                  [g, factor] STRATA_HD(Index i) { g[i] = g[i] * factor; });
    }
  }
  return norm;
}

}  // namespace strata
