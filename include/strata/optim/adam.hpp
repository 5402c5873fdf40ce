#pragma once
/// \file adam.hpp
/// Adam (Kingma & Ba, 2015) with L2 weight decay, and AdamW (Loshchilov & Hutter, 2019) with
/// decoupled weight decay, as PyTorch's torch.optim.Adam and torch.optim.AdamW (amsgrad is not
/// offered).

#include <cmath>

#include "common.hpp"

namespace strata {

template <class B>
class adam_optimizer;

namespace detail {
/// The checks Adam and AdamW share; `optimizer` names the one being checked.
inline void check_adam(const char* optimizer, double lr, double beta1, double beta2, double eps,
                       double weight_decay) {
  require_non_negative(optimizer, "lr", lr);
  require_unit_interval(optimizer, "beta1", beta1);
  require_unit_interval(optimizer, "beta2", beta2);
  require_non_negative(optimizer, "eps", eps);
  require_non_negative(optimizer, "weight_decay", weight_decay);
}

/// How weight decay enters an Adam step.
enum class adam_decay { none, l2, decoupled };

/// The per-step constants of an Adam update, in the parameters' scalar type.
template <class T>
struct adam_constants {
  T step_size, bias_correction2_sqrt, one_minus_beta1, beta2, one_minus_beta2, eps, l2, shrink;
};

/// One element's Adam update (see adam_optimizer), written for one decay mode and one end of
/// lerp so that its body is straight-line code.
template <class T, adam_decay Decay, bool FromStart>
struct adam_kernel {
  T* w;
  const T* grad;
  T* m;
  T* v;
  adam_constants<T> c;

  STRATA_HD void operator()(Index i) const {
    T g = grad[i];
    if (Decay == adam_decay::decoupled) w[i] = w[i] * c.shrink;
    if (Decay == adam_decay::l2) g = g + c.l2 * w[i];
    // lerp(m, g, 1 - beta1) from the nearer end, as detail::lerp (and PyTorch) evaluates it.
    m[i] = lerp_from<FromStart>(m[i], g, c.one_minus_beta1);
    v[i] = v[i] * c.beta2 + c.one_minus_beta2 * g * g;
    const T denom = square_root(v[i]) / c.bias_correction2_sqrt + c.eps;
    w[i] = w[i] - c.step_size * (m[i] / denom);
  }
};
}  // namespace detail

/// Adam hyperparameters, in PyTorch's argument order, with PyTorch's defaults:
///   lr = 1e-3, beta1 = 0.9, beta2 = 0.999 (PyTorch's `betas`), eps = 1e-8,
///   weight_decay = 0 (L2: added to the gradient, so it is rescaled by the adaptive step).
struct Adam {
  static constexpr const char* name = "Adam";
  template <class B>
  using impl = adam_optimizer<B>;

  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;

  /// Throws config_error naming the offending hyperparameter and its value.
  void validate() const { detail::check_adam(name, lr, beta1, beta2, eps, weight_decay); }
};

/// AdamW hyperparameters: Adam's, with PyTorch's AdamW defaults (lr = 1e-3, beta1 = 0.9,
/// beta2 = 0.999, eps = 1e-8, weight_decay = 0.01). The decay is decoupled: the weights shrink
/// by `lr * weight_decay` before the Adam update and the gradient is left alone.
struct AdamW {
  static constexpr const char* name = "AdamW";
  template <class B>
  using impl = adam_optimizer<B>;

  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.01;

  /// Throws config_error naming the offending hyperparameter and its value.
  void validate() const { detail::check_adam(name, lr, beta1, beta2, eps, weight_decay); }
};

/// Adam or AdamW bound to backend `B`. Per step t (from 1) and element:
///   AdamW: w *= 1 - lr * weight_decay          Adam: g += weight_decay * w
///   m = lerp(m, g, 1 - beta1)                  v = beta2 * v + (1 - beta2) * g * g
///   w -= (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
template <class B>
class adam_optimizer {
 public:
  using matrix = typename B::matrix;
  using T = typename B::scalar;

  /// Validates `spec` and allocates the two moment buffers of every slice.
  adam_optimizer(const Adam& spec, const std::vector<parameter_slice<B>>& slices)
      : adam_optimizer(spec, false, Adam::name, slices) {}
  /// Validates `spec` and allocates the two moment buffers of every slice.
  adam_optimizer(const AdamW& spec, const std::vector<parameter_slice<B>>& slices)
      : adam_optimizer(Adam{spec.lr, spec.beta1, spec.beta2, spec.eps, spec.weight_decay}, true,
                       AdamW::name, slices) {}

  /// Applies one update with learning rate `lr` (times each group's multiplier) in place.
  void step(std::vector<parameter_slice<B>>& slices, double lr) {
    state_.check(slices);
    detail::check_step_lr(name_, lr);
    ++step_count_;
    const double t = static_cast<double>(step_count_);
    // Bias corrections in double on the host, as PyTorch computes them from a Python float step.
    const double bias_correction1 = 1.0 - std::pow(spec_.beta1, t);
    const double bias_correction2 = 1.0 - std::pow(spec_.beta2, t);
    for (std::size_t k = 0; k < slices.size(); ++k) {
      const auto& s = slices[k];
      if (s.group.frozen()) continue;
      const auto [rate, decay] = detail::rates_for(s, lr, spec_.weight_decay);
      const detail::adam_constants<T> c{static_cast<T>(rate / bias_correction1), static_cast<T>(std::sqrt(bias_correction2)),
                                        static_cast<T>(1.0 - spec_.beta1), static_cast<T>(spec_.beta2),
                                        static_cast<T>(1.0 - spec_.beta2), static_cast<T>(spec_.eps),
                                        static_cast<T>(decay), static_cast<T>(1.0 - rate * decay)};
      // The decay mode and lerp's end are fixed for the whole slice: each combination is its own
      // straight-line kernel, so the element loop has no branches and vectorises.
      const bool from_start = c.one_minus_beta1 < T(0.5);
      if (decay == 0.0)
        from_start ? update<detail::adam_decay::none, true>(k, s, c) : update<detail::adam_decay::none, false>(k, s, c);
      else if (decoupled_)
        from_start ? update<detail::adam_decay::decoupled, true>(k, s, c) : update<detail::adam_decay::decoupled, false>(k, s, c);
      else
        from_start ? update<detail::adam_decay::l2, true>(k, s, c) : update<detail::adam_decay::l2, false>(k, s, c);
    }
  }

  /// Calls `f(name, matrix&)` for every moment buffer ("<parameter>.exp_avg" and
  /// "<parameter>.exp_avg_sq").
  template <class F>
  void for_each_state(F&& f) {
    state_.for_each(f);
  }
  /// The state tensors per slice: exp_avg, exp_avg_sq.
  const std::vector<std::string>& state_kinds() const { return state_.kinds(); }

  /// Steps taken so far (the t of the bias corrections).
  std::uint64_t step_count() const { return step_count_; }
  /// Restores the step count (with the buffers restored through for_each_state).
  void set_step_count(std::uint64_t count) { step_count_ = count; }
  /// True for AdamW (decoupled weight decay).
  bool decoupled() const { return decoupled_; }

 private:
  adam_optimizer(const Adam& spec, bool decoupled, const char* name, const std::vector<parameter_slice<B>>& slices)
      : spec_(spec), decoupled_(decoupled), name_(name),
        state_((detail::check_adam(name, spec.lr, spec.beta1, spec.beta2, spec.eps, spec.weight_decay), name), slices,
               {"exp_avg", "exp_avg_sq"}) {}

  template <detail::adam_decay Decay, bool FromStart>
  void update(std::size_t k, const parameter_slice<B>& s, const detail::adam_constants<T>& c) {
    B::for_each(s.size(), detail::adam_kernel<T, Decay, FromStart>{s.value, s.gradient, state_.data(0, k), state_.data(1, k), c});
  }

  Adam spec_;  // AdamW's hyperparameters are held in the same fields
  bool decoupled_;
  const char* name_;
  detail::slice_state<B> state_;
  std::uint64_t step_count_ = 0;
};

}  // namespace strata
