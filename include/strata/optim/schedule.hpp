#pragma once
/// \file schedule.hpp
/// Learning-rate schedules.
///
/// A schedule is a small value type with `double lr(double base_lr, std::uint64_t t) const`: the
/// learning rate at time t (0, 1, 2, ...) for a base rate `base_lr` (the optimizer spec's lr).
/// Schedules are pure functions of t, so resuming from a checkpoint needs only t; whether t
/// counts epochs or optimizer steps is the trainer's choice. Values follow the closed forms of
/// PyTorch's schedulers of the same names. Constructors validate and throw config_error naming
/// the schedule and the value.
///
/// ReduceLROnPlateau is the exception: it reacts to a validation metric, so it holds state and
/// is fed with `observe(metric)` once per evaluation; it scales whatever rate the time-based
/// schedule gives: `lr = plateau.lr(schedule.lr(base_lr, t))`.

#include <cmath>
#include <cstdint>
#include <limits>

#include "common.hpp"

namespace strata {

/// The base rate at every t. (Not PyTorch's ConstantLR, which scales the first iterations by a
/// factor; LinearWarmup covers that use.)
struct ConstantLR {
  /// `base_lr`, whatever t.
  double lr(double base_lr, std::uint64_t) const { return base_lr; }
};

/// Multiplies the rate by `gamma` every `step_size` units of t:
/// `base_lr * gamma^floor(t / step_size)` (PyTorch's StepLR, default gamma = 0.1).
struct StepLR {
  std::uint64_t step_size;  ///< how many units of t between decays; positive
  double gamma;             ///< the factor applied at each decay; positive

  /// Throws config_error when step_size is 0 or gamma is not positive and finite.
  explicit StepLR(std::uint64_t step, double decay = 0.1) : step_size(step), gamma(decay) {
    detail::require_hyperparameter(step_size > 0, "StepLR", "step_size", "positive",
                                   static_cast<double>(step_size));
    detail::require_hyperparameter(gamma > 0.0 && detail::finite_value(gamma), "StepLR", "gamma",
                                   "positive and finite", gamma);
  }

  /// `base_lr * gamma^floor(t / step_size)`.
  double lr(double base_lr, std::uint64_t t) const {
    return base_lr * std::pow(gamma, static_cast<double>(t / step_size));
  }
};

/// Half a cosine from `base_lr` at t = 0 down to `eta_min` at t = t_max:
/// `eta_min + (base_lr - eta_min) (1 + cos(pi t / t_max)) / 2` (PyTorch's CosineAnnealingLR
/// closed form; past t_max the cosine continues and the rate rises again, as there).
struct CosineAnnealingLR {
  std::uint64_t t_max;  ///< the half period; positive
  double eta_min;       ///< the lowest rate; non-negative

  /// Throws config_error when t_max is 0 or eta_min is negative.
  explicit CosineAnnealingLR(std::uint64_t half_period, double minimum = 0.0)
      : t_max(half_period), eta_min(minimum) {
    detail::require_hyperparameter(t_max > 0, "CosineAnnealingLR", "t_max", "positive",
                                   static_cast<double>(t_max));
    detail::require_non_negative("CosineAnnealingLR", "eta_min", eta_min);
  }

  /// The annealed rate at t.
  double lr(double base_lr, std::uint64_t t) const {
    const double pi = 3.141592653589793238462643;
    const double phase = pi * static_cast<double>(t) / static_cast<double>(t_max);
    return eta_min + (base_lr - eta_min) * (1.0 + std::cos(phase)) / 2.0;
  }
};

/// Linear warm-up in front of another schedule: for t < warmup_steps the rate rises linearly
/// from `start_factor` times the inner schedule's first rate to that rate; from then on the inner
/// schedule runs with its clock started at the end of the warm-up, so that e.g. a cosine anneals
/// over the steps after the warm-up. `LinearWarmup{100, 0.0, CosineAnnealingLR{900}}`.
/// start_factor defaults to 1/3, PyTorch's LinearLR default.
template <class Inner = ConstantLR>
struct LinearWarmup {
  std::uint64_t warmup_steps;  ///< length of the ramp; 0 means no warm-up
  double start_factor;         ///< fraction of the inner schedule's first rate at t = 0; in [0, 1]
  Inner after;                 ///< the schedule that follows the warm-up

  /// Throws config_error when start_factor is outside [0, 1].
  explicit LinearWarmup(std::uint64_t steps, double start = 1.0 / 3.0, Inner inner = Inner{})
      : warmup_steps(steps), start_factor(start), after(inner) {
    detail::require_hyperparameter(start_factor >= 0.0 && start_factor <= 1.0, "LinearWarmup",
                                   "start_factor", "in [0, 1]", start_factor);
  }

  /// The warmed-up rate at t.
  double lr(double base_lr, std::uint64_t t) const {
    if (t >= warmup_steps) return after.lr(base_lr, t - warmup_steps);
    const double progress = static_cast<double>(t) / static_cast<double>(warmup_steps);
    return (start_factor + (1.0 - start_factor) * progress) * after.lr(base_lr, 0);
  }
};

/// Lets `LinearWarmup{100, 0.0, CosineAnnealingLR{900}}` deduce the inner schedule.
template <class Inner>
LinearWarmup(std::uint64_t, double, Inner) -> LinearWarmup<Inner>;

/// Whether the metric that ReduceLROnPlateau watches should go down (a loss) or up (r2).
enum class plateau_mode { min, max };

/// Whether an improvement must beat the best value by a fraction of it or by a fixed amount.
enum class threshold_mode { rel, abs };

/// The scalar state of ReduceLROnPlateau, for checkpoints.
struct plateau_state {
  double best;                ///< best metric seen (+-infinity before the first observation)
  std::uint64_t bad_epochs;   ///< observations since the last improvement
  std::uint64_t cooldown_left;///< observations still ignored after a reduction
  std::uint64_t reductions;   ///< how many times the rate was reduced
  double scale;               ///< product of the reductions: factor^reductions
};

/// Multiplies the rate by `factor` when the watched metric has not improved for more than
/// `patience` observations (PyTorch's ReduceLROnPlateau, same defaults and same rules:
/// improvement means beating the best by `threshold` relative (or absolute), after a reduction
/// `cooldown` observations are ignored, and the rate never drops below `min_lr`). PyTorch's
/// `eps` (skip reductions smaller than 1e-8) is not modelled.
class ReduceLROnPlateau {
 public:
  plateau_mode mode;        ///< min: lower is better (default); max: higher is better
  double factor;            ///< multiplier at each reduction; in (0, 1); default 0.1
  std::uint64_t patience;   ///< observations without improvement tolerated; default 10
  double threshold;         ///< minimal improvement; non-negative; default 1e-4
  threshold_mode threshold_kind;  ///< rel (default): relative to the best; abs: absolute
  std::uint64_t cooldown;   ///< observations ignored after a reduction; default 0
  double min_lr;            ///< lower bound of the rate; non-negative; default 0

  /// Arguments in PyTorch's order; throws config_error for a factor outside (0, 1) or a negative
  /// threshold or min_lr.
  explicit ReduceLROnPlateau(plateau_mode m = plateau_mode::min, double f = 0.1,
                             std::uint64_t wait = 10, double thresh = 1e-4,
                             threshold_mode kind = threshold_mode::rel, std::uint64_t cool = 0,
                             double floor = 0.0)
      : mode(m), factor(f), patience(wait), threshold(thresh), threshold_kind(kind),
        cooldown(cool), min_lr(floor) {
    detail::require_hyperparameter(factor > 0.0 && factor < 1.0, "ReduceLROnPlateau", "factor",
                                   "in (0, 1)", factor);
    detail::require_non_negative("ReduceLROnPlateau", "threshold", threshold);
    detail::require_non_negative("ReduceLROnPlateau", "min_lr", min_lr);
    state_.best = mode == plateau_mode::min ? std::numeric_limits<double>::infinity()
                                            : -std::numeric_limits<double>::infinity();
  }

  /// Records one evaluation of the watched metric and returns the current scale (the product of
  /// all reductions so far, 1 before the first). A NaN never counts as an improvement.
  double observe(double metric) {
    if (improves(metric)) {
      state_.best = metric;
      state_.bad_epochs = 0;
    } else {
      ++state_.bad_epochs;
    }
    if (state_.cooldown_left > 0) {
      --state_.cooldown_left;
      state_.bad_epochs = 0;
    }
    if (state_.bad_epochs > patience) {
      state_.scale *= factor;
      ++state_.reductions;
      state_.cooldown_left = cooldown;
      state_.bad_epochs = 0;
    }
    return state_.scale;
  }

  /// The current scale: factor^reductions.
  double scale() const { return state_.scale; }

  /// The rate to use for a scheduled rate `scheduled_lr`: unchanged before the first reduction,
  /// then `max(scheduled_lr * scale, min_lr)`.
  double lr(double scheduled_lr) const {
    if (state_.reductions == 0) return scheduled_lr;
    const double reduced = scheduled_lr * state_.scale;
    return reduced > min_lr ? reduced : min_lr;
  }

  /// The scalar state, for checkpoints.
  const plateau_state& state() const { return state_; }
  /// Restores a state saved with `state()`.
  void restore(const plateau_state& saved) { state_ = saved; }

 private:
  bool improves(double metric) const {
    const double best = state_.best;
    if (mode == plateau_mode::min)
      return threshold_kind == threshold_mode::rel ? metric < best * (1.0 - threshold)
                                                   : metric < best - threshold;
    return threshold_kind == threshold_mode::rel ? metric > best * (1.0 + threshold)
                                                 : metric > best + threshold;
  }

  plateau_state state_{0.0, 0, 0, 0, 1.0};
};

}  // namespace strata
