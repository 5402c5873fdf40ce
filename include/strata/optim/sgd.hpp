#pragma once
/// \file sgd.hpp
/// Stochastic gradient descent with optional momentum, dampening, Nesterov momentum and L2
/// weight decay (PyTorch's torch.optim.SGD).

#include "common.hpp"

namespace strata {

template <class B>
class sgd_optimizer;

/// SGD hyperparameters, in PyTorch's argument order. Defaults are PyTorch's except `lr`, which
/// PyTorch requires the user to give; we chose 0.01.
///   lr = 0.01, momentum = 0, dampening = 0, weight_decay = 0 (L2 added to the gradient),
///   nesterov = false (requires momentum > 0 and dampening = 0, as PyTorch).
struct SGD {
  static constexpr const char* name = "SGD";
  template <class B>
  using impl = sgd_optimizer<B>;

  double lr = 0.01;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;

  /// Throws config_error naming the offending hyperparameter and its value.
  void validate() const {
    detail::require_non_negative(name, "lr", lr);
    detail::require_non_negative(name, "momentum", momentum);
    detail::require_hyperparameter(dampening >= 0.0 && dampening <= 1.0, name, "dampening",
                                   "in [0, 1]", dampening);
    detail::require_non_negative(name, "weight_decay", weight_decay);
    detail::require_hyperparameter(!nesterov || momentum > 0.0, name,
                                   "momentum (with nesterov)", "positive", momentum);
    detail::require_hyperparameter(!nesterov || dampening == 0.0, name,
                                   "dampening (with nesterov)", "zero", dampening);
  }
};

/// SGD bound to backend `B`. Per step and element (g the gradient, w the weight):
///   g += weight_decay * w
///   if momentum != 0: buf = g on the first step, else buf = momentum * buf + (1 - dampening) * g
///                     g = nesterov ? g + momentum * buf : buf
///   w -= lr * g
template <class B>
class sgd_optimizer {
 public:
  using matrix = typename B::matrix;
  using T = typename B::scalar;

  /// Validates `spec` and allocates one momentum buffer per slice (none without momentum).
  sgd_optimizer(const SGD& spec, const std::vector<parameter_slice<B>>& slices)
      : spec_((spec.validate(), spec)),
        state_(SGD::name, slices, spec.momentum != 0.0 ? std::vector<std::string>{"momentum_buffer"} : std::vector<std::string>{}) {}

  /// Applies one update with learning rate `lr` (times each group's multiplier) in place.
  void step(std::vector<parameter_slice<B>>& slices, double lr) {
    state_.check(slices);
    detail::check_step_lr(SGD::name, lr);
    const T mu = static_cast<T>(spec_.momentum);
    const T keep = static_cast<T>(1.0 - spec_.dampening);
    const bool nesterov = spec_.nesterov;
    // PyTorch creates the momentum buffer as a copy of the first gradient (no dampening then).
    const bool first = step_count_ == 0;
    for (std::size_t k = 0; k < slices.size(); ++k) {
      const auto& s = slices[k];
      if (s.group.frozen()) continue;
      const auto rates = detail::rates_for(s, lr, spec_.weight_decay);
      const T step_size = static_cast<T>(rates.lr);
      const T decay = static_cast<T>(rates.weight_decay);
      const bool has_decay = rates.weight_decay != 0.0;
      T* w = s.value;
      const T* grad = s.gradient;
      if (spec_.momentum == 0.0) {
        B::for_each(s.size(), [w, grad, step_size, decay, has_decay] STRATA_HD(Index i) {
          T g = grad[i];
          if (has_decay) g = g + decay * w[i];
          w[i] = w[i] - step_size * g;
        });
      } else {
        T* buf = state_.data(0, k);
        B::for_each(s.size(), [w, grad, buf, step_size, decay, has_decay, mu, keep, nesterov,
                               first] STRATA_HD(Index i) {
          T g = grad[i];
          if (has_decay) g = g + decay * w[i];
          buf[i] = first ? g : mu * buf[i] + keep * g;
          g = nesterov ? g + mu * buf[i] : buf[i];
          w[i] = w[i] - step_size * g;
        });
      }
    }
    ++step_count_;
  }

  /// Calls `f(name, matrix&)` for every momentum buffer ("<parameter>.momentum_buffer").
  template <class F>
  void for_each_state(F&& f) {
    state_.for_each(f);
  }
  /// The state tensors per slice: momentum_buffer, or none without momentum.
  const std::vector<std::string>& state_kinds() const { return state_.kinds(); }

  /// Steps taken so far; 0 means the momentum buffers are not yet initialised.
  std::uint64_t step_count() const { return step_count_; }
  /// Restores the step count (with the buffers restored through for_each_state).
  void set_step_count(std::uint64_t count) { step_count_ = count; }

 private:
  SGD spec_;
  detail::slice_state<B> state_;
  std::uint64_t step_count_ = 0;
};

}  // namespace strata
