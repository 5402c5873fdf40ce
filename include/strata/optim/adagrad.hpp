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

  /// Validates `spec` and allocates every parameter's sum, filled with the initial value.
  adagrad_optimizer(const Adagrad& spec, const std::vector<parameter<B>>& params) : spec_(spec) {
    spec_.validate();
    for (const auto& p : params) {
      names_.push_back(p.name);
      sizes_.push_back(p.value->rows() * p.value->cols());
      sum_.push_back(detail::state_like<B>(*p.value, spec_.initial_accumulator_value));
    }
  }

  /// Applies one update with learning rate `lr` to every parameter in place.
  void step(std::vector<parameter<B>>& params, double lr) {
    detail::check_parameters<B>(Adagrad::name, params, names_, sizes_);
    detail::check_step_lr(Adagrad::name, lr);
    ++step_count_;
    const double decayed_lr =
        lr / (1.0 + static_cast<double>(step_count_ - 1) * spec_.lr_decay);
    const T step_size = static_cast<T>(decayed_lr);
    const T eps = static_cast<T>(spec_.eps);
    const bool has_decay = spec_.weight_decay != 0.0;
    const T decay = static_cast<T>(spec_.weight_decay);
    for (std::size_t k = 0; k < params.size(); ++k) {
      T* w = B::data(*params[k].value);
      const T* grad = B::data(*params[k].gradient);
      T* s = B::data(sum_[k]);
      B::for_each(sizes_[k], [w, grad, s, step_size, eps, has_decay, decay] STRATA_HD(Index i) {
        T g = grad[i];
        if (has_decay) g = g + decay * w[i];
        s[i] = s[i] + g * g;
        const T root = detail::square_root(s[i]) + eps;
        w[i] = w[i] - step_size * (g / root);
      });
    }
  }

  /// Calls `f(name, matrix&)` for every accumulated sum ("<parameter>.sum").
  template <class F>
  void for_each_state(F&& f) {
    for (std::size_t k = 0; k < sum_.size(); ++k) f(names_[k] + ".sum", sum_[k]);
  }

  /// Steps taken so far (the t of the learning-rate decay).
  std::uint64_t step_count() const { return step_count_; }
  /// Restores the step count (with the buffers restored through for_each_state).
  void set_step_count(std::uint64_t count) { step_count_ = count; }

 private:
  Adagrad spec_;
  std::vector<std::string> names_;
  std::vector<Index> sizes_;
  std::vector<matrix> sum_;
  std::uint64_t step_count_ = 0;
};

}  // namespace strata
