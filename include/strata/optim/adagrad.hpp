#pragma once
/// \file adagrad.hpp
/// Adagrad (Duchi, Hazan & Singer, 2011) with PyTorch's learning-rate decay and L2 weight decay
/// (torch.optim.Adagrad).

#include "common.hpp"

namespace strata {

template <class B>
class adagrad_optimizer;

/// Adagrad hyperparameters, in PyTorch's argument order, with PyTorch's defaults:
///   lr = 0.01, lr_decay = 0 (step t uses lr / (1 + (t - 1) lr_decay)), weight_decay = 0 (L2
///   added to the gradient), initial_accumulator_value = 0 (start of the squared-gradient sum),
///   eps = 1e-10 (added to the root).
struct Adagrad {
  static constexpr const char* name = "Adagrad";
  template <class B>
  using impl = adagrad_optimizer<B>;

  double lr = 0.01;
  double lr_decay = 0.0;
  double weight_decay = 0.0;
  double initial_accumulator_value = 0.0;
  double eps = 1e-10;

  /// Throws config_error naming the offending hyperparameter and its value.
  void validate() const {
    detail::require_non_negative(name, "lr", lr);
    detail::require_non_negative(name, "lr_decay", lr_decay);
    detail::require_non_negative(name, "weight_decay", weight_decay);
    detail::require_non_negative(name, "initial_accumulator_value", initial_accumulator_value);
    detail::require_non_negative(name, "eps", eps);
  }
};

/// Adagrad bound to backend `B`. Per step t (from 1) and element:
///   g += weight_decay * w
///   sum += g * g
///   w -= (lr / (1 + (t - 1) lr_decay)) * g / (sqrt(sum) + eps)
template <class B>
class adagrad_optimizer {
 public:
  using matrix = typename B::matrix;
  using T = typename B::scalar;

  /// Validates `spec` and allocates every slice's sum, filled with the initial value.
  adagrad_optimizer(const Adagrad& spec, const std::vector<parameter_slice<B>>& slices)
      : spec_((spec.validate(), spec)), state_(Adagrad::name, slices, {"sum"}, spec.initial_accumulator_value) {}

  /// Applies one update with learning rate `lr` (times each group's multiplier) in place.
  void step(std::vector<parameter_slice<B>>& slices, double lr) {
    state_.check(slices);
    detail::check_step_lr(Adagrad::name, lr);
    ++step_count_;
    const T eps = static_cast<T>(spec_.eps);
    for (std::size_t k = 0; k < slices.size(); ++k) {
      const auto& s = slices[k];
      if (s.group.frozen()) continue;
      const auto rates = detail::rates_for(s, lr, spec_.weight_decay);
      const T step_size = static_cast<T>(rates.lr / (1.0 + static_cast<double>(step_count_ - 1) * spec_.lr_decay));
      const bool has_decay = rates.weight_decay != 0.0;
      const T decay = static_cast<T>(rates.weight_decay);
      T* w = s.value;
      const T* grad = s.gradient;
      T* sum = state_.data(0, k);
      B::for_each(s.size(), [w, grad, sum, step_size, eps, has_decay, decay] STRATA_HD(Index i) {
        T g = grad[i];
        if (has_decay) g = g + decay * w[i];
        sum[i] = sum[i] + g * g;
        const T root = detail::square_root(sum[i]) + eps;
        w[i] = w[i] - step_size * (g / root);
      });
    }
  }

  /// Calls `f(name, matrix&)` for every accumulated sum ("<parameter>.sum").
  template <class F>
  void for_each_state(F&& f) {
    state_.for_each(f);
  }
  /// The state tensors per slice: sum.
  const std::vector<std::string>& state_kinds() const { return state_.kinds(); }

  /// Steps taken so far (the t of the learning-rate decay).
  std::uint64_t step_count() const { return step_count_; }
  /// Restores the step count (with the buffers restored through for_each_state).
  void set_step_count(std::uint64_t count) { step_count_ = count; }

 private:
  Adagrad spec_;
  detail::slice_state<B> state_;
  std::uint64_t step_count_ = 0;
};

}  // namespace strata
