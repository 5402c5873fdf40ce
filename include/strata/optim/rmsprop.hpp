#pragma once
/// \file rmsprop.hpp
/// RMSprop (Hinton's lecture 6e), with PyTorch's optional momentum, centering and L2 weight
/// decay (torch.optim.RMSprop).

#include "common.hpp"

namespace strata {

template <class B>
class rmsprop_optimizer;

/// RMSprop hyperparameters, in PyTorch's argument order, with PyTorch's defaults:
///   lr = 0.01, alpha = 0.99 (decay of the squared-gradient average), eps = 1e-8 (added to the
///   root, not under it), weight_decay = 0 (L2 added to the gradient), momentum = 0,
///   centered = false (true divides by an estimate of the gradient's variance instead of its
///   second moment).
struct RMSprop {
  static constexpr const char* name = "RMSprop";
  template <class B>
  using impl = rmsprop_optimizer<B>;

  double lr = 0.01;
  double alpha = 0.99;
  double eps = 1e-8;
  double weight_decay = 0.0;
  double momentum = 0.0;
  bool centered = false;

  /// Throws config_error naming the offending hyperparameter and its value.
  void validate() const {
    detail::require_non_negative(name, "lr", lr);
    detail::require_hyperparameter(alpha >= 0.0 && alpha <= 1.0, name, "alpha", "in [0, 1]",
                                   alpha);
    detail::require_non_negative(name, "eps", eps);
    detail::require_non_negative(name, "weight_decay", weight_decay);
    detail::require_non_negative(name, "momentum", momentum);
  }
};

/// RMSprop bound to backend `B`. Per step and element:
///   g += weight_decay * w
///   sq = alpha * sq + (1 - alpha) * g * g
///   centered: ga = lerp(ga, g, 1 - alpha); avg = sqrt(sq - ga * ga) + eps
///   otherwise: avg = sqrt(sq) + eps
///   momentum > 0: buf = momentum * buf + g / avg; w -= lr * buf
///   otherwise:    w -= lr * g / avg
/// The one departure from PyTorch: in the centered variant `sq - ga * ga`, which is never
/// negative in exact arithmetic, is clamped at 0, so that rounding cannot produce sqrt of a
/// negative number (PyTorch would give NaN there).
template <class B>
class rmsprop_optimizer {
 public:
  using matrix = typename B::matrix;
  using T = typename B::scalar;

  /// Validates `spec` and allocates the square average of every slice, plus the momentum
  /// buffer and the gradient average when momentum and centering are on.
  rmsprop_optimizer(const RMSprop& spec, const std::vector<parameter_slice<B>>& slices)
      : spec_((spec.validate(), spec)), state_(RMSprop::name, slices, kinds_for(spec)) {}

  /// Applies one update with learning rate `lr` (times each group's multiplier) in place.
  void step(std::vector<parameter_slice<B>>& slices, double lr) {
    state_.check(slices);
    detail::check_step_lr(RMSprop::name, lr);
    ++step_count_;
    const T alpha = static_cast<T>(spec_.alpha);
    const T one_minus_alpha = static_cast<T>(1.0 - spec_.alpha);
    const T eps = static_cast<T>(spec_.eps);
    const bool centered = spec_.centered;
    const bool has_momentum = spec_.momentum > 0.0;
    const T mu = static_cast<T>(spec_.momentum);
    // State kinds are square_avg, then momentum_buffer and grad_avg when on (kinds_for).
    const std::size_t momentum_kind = 1, average_kind = has_momentum ? 2 : 1;
    for (std::size_t k = 0; k < slices.size(); ++k) {
      const auto& s = slices[k];
      if (s.group.frozen()) continue;
      const auto rates = detail::rates_for(s, lr, spec_.weight_decay);
      const T step_size = static_cast<T>(rates.lr);
      const bool has_decay = rates.weight_decay != 0.0;
      const T decay = static_cast<T>(rates.weight_decay);
      T* w = s.value;
      const T* grad = s.gradient;
      T* sq = state_.data(0, k);
      T* ga = centered ? state_.data(average_kind, k) : nullptr;
      T* buf = has_momentum ? state_.data(momentum_kind, k) : nullptr;
      B::for_each(s.size(), [w, grad, sq, ga, buf, step_size, alpha, one_minus_alpha, eps,
                             has_decay, decay, centered, has_momentum, mu] STRATA_HD(Index i) {
        T g = grad[i];
        if (has_decay) g = g + decay * w[i];
        sq[i] = sq[i] * alpha + one_minus_alpha * g * g;
        T avg;
        if (centered) {
          ga[i] = detail::lerp(ga[i], g, one_minus_alpha);
          const T variance = sq[i] + T(-1) * ga[i] * ga[i];
          avg = detail::square_root(variance > T(0) ? variance : T(0)) + eps;
        } else {
          avg = detail::square_root(sq[i]) + eps;
        }
        if (has_momentum) {
          buf[i] = buf[i] * mu + g / avg;
          w[i] = w[i] - step_size * buf[i];
        } else {
          w[i] = w[i] - step_size * (g / avg);
        }
      });
    }
  }

  /// Calls `f(name, matrix&)` for every state tensor: "<parameter>.square_avg", and
  /// "<parameter>.momentum_buffer" / "<parameter>.grad_avg" when momentum / centering are on.
  template <class F>
  void for_each_state(F&& f) {
    state_.for_each(f);
  }
  /// The state tensors per slice: square_avg, then momentum_buffer and grad_avg when on.
  const std::vector<std::string>& state_kinds() const { return state_.kinds(); }

  /// Steps taken so far.
  std::uint64_t step_count() const { return step_count_; }
  /// Restores the step count (with the buffers restored through for_each_state).
  void set_step_count(std::uint64_t count) { step_count_ = count; }

 private:
  static std::vector<std::string> kinds_for(const RMSprop& spec) {
    std::vector<std::string> kinds{"square_avg"};
    if (spec.momentum > 0.0) kinds.push_back("momentum_buffer");
    if (spec.centered) kinds.push_back("grad_avg");
    return kinds;
  }

  RMSprop spec_;
  detail::slice_state<B> state_;
  std::uint64_t step_count_ = 0;
};

}  // namespace strata
