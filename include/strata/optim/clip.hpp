#pragma once
/// \file clip.hpp
/// Gradient clipping by global norm (PyTorch's torch.nn.utils.clip_grad_norm_ with the 2-norm).

#include <cmath>
#include <vector>

#include "common.hpp"

namespace strata {

namespace detail {
/// The squared 2-norm of one slice's gradient, summed in double.
template <class B>
double squared_norm(const parameter_slice<B>& s) {
  const auto* g = s.gradient;
  return B::sum(s.size(), [g] STRATA_HD(Index i) {
    const double x = static_cast<double>(g[i]);
    return x * x;
  });
}
}  // namespace detail

/// The squared 2-norm of the gradients of every slice that trains (frozen groups are left out,
/// as PyTorch leaves out tensors without gradients), summed in double.
template <class B>
double squared_gradient_norm(const std::vector<parameter_slice<B>>& slices) {
  double sum_of_squares = 0.0;
  for (const auto& s : slices)
    if (!s.group.frozen()) sum_of_squares += detail::squared_norm(s);
  return sum_of_squares;
}

/// Rescales the gradients of every slice that trains by `max_norm / (norm + 1e-6)` when that is
/// below 1, given their global `norm` (computed by the caller, over all ranks when the slices are
/// shards). Returns `norm`. A non-finite norm leaves the gradients untouched (see
/// clip_grad_norm).
template <class B>
double scale_to_norm(std::vector<parameter_slice<B>>& slices, double max_norm, double norm) {
  using T = typename B::scalar;
  detail::require_non_negative("clip_grad_norm", "max_norm", max_norm);
  if (!detail::finite_value(norm)) return norm;
  const double scale = max_norm / (norm + 1e-6);
  if (scale < 1.0) {
    const T factor = static_cast<T>(scale);
    for (auto& s : slices) {
      if (s.group.frozen()) continue;
      T* g = s.gradient;
      B::for_each(s.size(), [g, factor] STRATA_HD(Index i) { g[i] = g[i] * factor; });
    }
  }
  return norm;
}

/// Rescales all gradients together so that their global 2-norm (over every element of every
/// slice that trains) is at most `max_norm`, and returns the norm *before* clipping. As PyTorch,
/// the scale is `max_norm / (norm + 1e-6)` and is applied only when it is below 1. Squares are
/// summed in double. When the norm is not finite the gradients are left untouched and the norm
/// is returned, so that the caller can detect it and skip the step (PyTorch would multiply by a
/// NaN or zero scale). Throws config_error for a negative or non-finite `max_norm`. The slices
/// must hold whole, reduced gradients; the trainer clips through its strategy, which sums the
/// norm over ranks when the slices are shards (ZeRO) or split rows (model parallelism).
template <class B>
double clip_grad_norm(std::vector<parameter_slice<B>>& slices, double max_norm) {
  detail::require_non_negative("clip_grad_norm", "max_norm", max_norm);
  return scale_to_norm(slices, max_norm, std::sqrt(squared_gradient_norm(slices)));
}

}  // namespace strata
