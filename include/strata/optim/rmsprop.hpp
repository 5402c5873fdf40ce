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

  /// Validates `spec` and allocates the square average of every parameter, plus the momentum
  /// buffer and the gradient average when momentum and centering are on.
  rmsprop_optimizer(const RMSprop& spec, const std::vector<parameter<B>>& params) : spec_(spec) {
    spec_.validate();
    for (const auto& p : params) {
      names_.push_back(p.name);
      sizes_.push_back(p.value->rows() * p.value->cols());
      square_avg_.push_back(detail::state_like<B>(*p.value, 0.0));
      if (spec_.momentum > 0.0) momentum_buffer_.push_back(detail::state_like<B>(*p.value, 0.0));
      if (spec_.centered) grad_avg_.push_back(detail::state_like<B>(*p.value, 0.0));
    }
  }

  /// Applies one update with learning rate `lr` to every parameter in place.
  void step(std::vector<parameter<B>>& params, double lr) {
    detail::check_parameters<B>(RMSprop::name, params, names_, sizes_);
    detail::check_step_lr(RMSprop::name, lr);
    ++step_count_;
    const T step_size = static_cast<T>(lr);
    const T alpha = static_cast<T>(spec_.alpha);
    const T one_minus_alpha = static_cast<T>(1.0 - spec_.alpha);
    const T eps = static_cast<T>(spec_.eps);
    const bool has_decay = spec_.weight_decay != 0.0;
    const T decay = static_cast<T>(spec_.weight_decay);
    const bool centered = spec_.centered;
    const bool has_momentum = spec_.momentum > 0.0;
    const T mu = static_cast<T>(spec_.momentum);
    for (std::size_t k = 0; k < params.size(); ++k) {
      T* w = B::data(*params[k].value);
      const T* grad = B::data(*params[k].gradient);
      T* sq = B::data(square_avg_[k]);
      T* ga = centered ? B::data(grad_avg_[k]) : nullptr;
      T* buf = has_momentum ? B::data(momentum_buffer_[k]) : nullptr;
      B::for_each(sizes_[k], [w, grad, sq, ga, buf, step_size, alpha, one_minus_alpha, eps,
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
    for (std::size_t k = 0; k < names_.size(); ++k) {
      f(names_[k] + ".square_avg", square_avg_[k]);
      if (!momentum_buffer_.empty()) f(names_[k] + ".momentum_buffer", momentum_buffer_[k]);
      if (!grad_avg_.empty()) f(names_[k] + ".grad_avg", grad_avg_[k]);
    }
  }

  /// Steps taken so far.
  std::uint64_t step_count() const { return step_count_; }
  /// Restores the step count (with the buffers restored through for_each_state).
  void set_step_count(std::uint64_t count) { step_count_ = count; }

 private:
  RMSprop spec_;
  std::vector<std::string> names_;
  std::vector<Index> sizes_;
  std::vector<matrix> square_avg_, momentum_buffer_, grad_avg_;
  std::uint64_t step_count_ = 0;
};

}  // namespace strata
