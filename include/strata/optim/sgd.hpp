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

  /// Validates `spec` and allocates one momentum buffer per parameter (none without momentum).
  sgd_optimizer(const SGD& spec, const std::vector<parameter<B>>& params) : spec_(spec) {
    spec_.validate();
    for (const auto& p : params) {
      names_.push_back(p.name);
      sizes_.push_back(p.value->rows() * p.value->cols());
      if (spec_.momentum != 0.0) momentum_buffer_.push_back(detail::state_like<B>(*p.value, 0.0));
    }
  }

  /// Applies one update with learning rate `lr` to every parameter in place.
  void step(std::vector<parameter<B>>& params, double lr) {
    detail::check_parameters<B>(SGD::name, params, names_, sizes_);
    detail::check_step_lr(SGD::name, lr);
    const T step_size = static_cast<T>(lr);
    const T decay = static_cast<T>(spec_.weight_decay);
    const bool has_decay = spec_.weight_decay != 0.0;
    const T mu = static_cast<T>(spec_.momentum);
    const T keep = static_cast<T>(1.0 - spec_.dampening);
    const bool nesterov = spec_.nesterov;
    // PyTorch creates the momentum buffer as a copy of the first gradient (no dampening then).
    const bool first = step_count_ == 0;
    for (std::size_t k = 0; k < params.size(); ++k) {
      T* w = B::data(*params[k].value);
      const T* grad = B::data(*params[k].gradient);
      const Index n = sizes_[k];
      if (spec_.momentum == 0.0) {
        B::for_each(n, [w, grad, step_size, decay, has_decay] STRATA_HD(Index i) {
          T g = grad[i];
          if (has_decay) g = g + decay * w[i];
          w[i] = w[i] - step_size * g;
        });
      } else {
        T* buf = B::data(momentum_buffer_[k]);
        B::for_each(n, [w, grad, buf, step_size, decay, has_decay, mu, keep, nesterov,
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
    for (std::size_t k = 0; k < momentum_buffer_.size(); ++k)
      f(names_[k] + ".momentum_buffer", momentum_buffer_[k]);
  }

  /// Steps taken so far; 0 means the momentum buffers are not yet initialised.
  std::uint64_t step_count() const { return step_count_; }
  /// Restores the step count (with the buffers restored through for_each_state).
  void set_step_count(std::uint64_t count) { step_count_ = count; }

 private:
  SGD spec_;
  std::vector<std::string> names_;
  std::vector<Index> sizes_;
  std::vector<matrix> momentum_buffer_;
  std::uint64_t step_count_ = 0;
};

}  // namespace strata
