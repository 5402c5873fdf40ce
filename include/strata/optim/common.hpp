#pragma once
/// \file common.hpp
/// What every optimizer shares: the optimizer contract, hyperparameter checks, the check that a
/// parameter list matches the state built for it, and the small element-wise helpers.
///
/// An optimizer is a *spec* struct (SGD, Adam, AdamW, RMSprop, Adagrad) that holds the
/// hyperparameters, in PyTorch's argument order so that aggregate initialisation reads like
/// PyTorch's positional arguments (`SGD{0.1, 0.9}` is lr 0.1, momentum 0.9), with
///   `double lr`                              the base learning rate (schedules scale it)
///   `static constexpr const char* name`      the name used in messages and state files
///   `void validate() const`                  throws config_error naming the optimizer and value
///   `template <class B> using impl = ...`    the optimizer state bound to backend B
/// The impl is constructed from the spec and the slices it will update (`whole_slices(params)`,
/// or a sharded strategy's pieces; core/parameter.hpp), allocates its per-slice state once
/// (zeroed, as PyTorch's lazily created state) and offers
///   `void step(std::vector<parameter_slice<B>>& slices, double lr)`   one in-place update, with
///        the learning rate given by the caller (a schedule's output) rather than the spec's;
///        each slice trains at `lr * group.lr_scale`, with weight decay only where its group
///        allows, and a frozen slice (multiplier 0) is skipped: weights and state unchanged
///   `template <class F> void for_each_state(F&& f)`   f(name, B::matrix&) for every state
///        tensor, named "<parameter name>.<PyTorch state name>" (e.g. "...weight.exp_avg")
///   `const std::vector<std::string>& state_kinds() const`   those state names, per slice
///   `std::uint64_t step_count() const`, `void set_step_count(std::uint64_t)`   the scalar state
/// The step count is the optimizer's, not each slice's: a group thawed after some steps continues
/// Adam's bias correction (and SGD's first-step momentum rule) from there, where PyTorch, which
/// creates state on a tensor's first update, would start it at 1.
/// Together, for_each_state and the step count are everything a checkpoint needs to resume
/// bit-identically. Updates follow PyTorch's single-tensor (foreach=False) code path operation
/// by operation, in B::scalar, with scalar factors (bias corrections) computed in double.

#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "../core/config.hpp"
#include "../core/error.hpp"
#include "../core/parameter.hpp"

namespace strata {

/// The optimizer state of spec `Spec` on backend `B`: `optimizer_t<Adam, B> opt(spec, params)`.
template <class Spec, class B>
using optimizer_t = typename Spec::template impl<B>;

namespace detail {

/// True for a finite value (false for NaN and infinity).
inline bool finite_value(double x) { return x - x == 0.0; }

/// Throws config_error "<optimizer>: <what> must be <rule>, got <value>" unless `ok`.
inline void require_hyperparameter(bool ok, const char* optimizer, const char* what,
                                   const char* rule, double value) {
  if (!ok)
    throw config_error(concat(optimizer, ": ", what, " must be ", rule, ", got ", value));
}

/// A non-negative finite hyperparameter (learning rate, weight decay, eps, momentum, ...).
inline void require_non_negative(const char* optimizer, const char* what, double value) {
  require_hyperparameter(value >= 0.0 && finite_value(value), optimizer, what,
                         "non-negative and finite", value);
}

/// A decay rate in [0, 1) (Adam's betas).
inline void require_unit_interval(const char* optimizer, const char* what, double value) {
  require_hyperparameter(value >= 0.0 && value < 1.0, optimizer, what, "in [0, 1)", value);
}

/// The state tensors an optimizer keeps for each slice it updates: one tensor per state kind
/// ("exp_avg", "momentum_buffer", ...) shaped like the slice and filled with `init` (PyTorch
/// creates its state lazily, zeroed). Also checks that the slices given to `step` are the ones
/// the state was built for.
template <class B>
class slice_state {
 public:
  using matrix = typename B::matrix;
  using T = typename B::scalar;

  slice_state(const char* optimizer, const std::vector<parameter_slice<B>>& slices, std::vector<std::string> kinds,
              double init = 0.0)
      : optimizer_(optimizer), kinds_(std::move(kinds)), tensors_(kinds_.size()) {
    for (const auto& s : slices) {
      names_.push_back(s.name);
      sizes_.push_back(s.size());
      for (auto& per_kind : tensors_) {
        per_kind.emplace_back();
        B::resize(per_kind.back(), s.rows, s.cols);
        B::fill(per_kind.back(), static_cast<T>(init));
      }
    }
  }

  /// The state names, in the order for_each gives them per slice.
  const std::vector<std::string>& kinds() const { return kinds_; }
  /// The first element of state `kind` for slice `slice`.
  T* data(std::size_t kind, std::size_t slice) { return B::data(tensors_[kind][slice]); }

  /// Calls f("<parameter>.<kind>", matrix&) for every state tensor, slice by slice.
  template <class F>
  void for_each(F& f) {
    for (std::size_t k = 0; k < names_.size(); ++k)
      for (std::size_t kind = 0; kind < kinds_.size(); ++kind) f(names_[k] + "." + kinds_[kind], tensors_[kind][k]);
  }

  /// Throws shape_error unless `slices` match the ones the state was built for (count and sizes).
  void check(const std::vector<parameter_slice<B>>& slices) const {
    if (slices.size() != names_.size())
      throw shape_error(concat(optimizer_, ": built for ", names_.size(), " parameters, stepped with ", slices.size()));
    for (std::size_t k = 0; k < slices.size(); ++k)
      if (slices[k].size() != sizes_[k])
        throw shape_error(concat(optimizer_, ": parameter '", slices[k].name, "' has ", slices[k].size(),
                                 " elements but its state was built for ", sizes_[k], " (parameter '", names_[k], "')"));
  }

 private:
  const char* optimizer_;
  std::vector<std::string> kinds_;
  std::vector<std::string> names_;
  std::vector<Index> sizes_;
  std::vector<std::vector<matrix>> tensors_;  // [kind][slice]
};

/// The learning rate and weight decay that apply to one slice: the step's rate times the
/// group's multiplier, and the optimizer's decay unless the group opts out.
struct slice_rates {
  double lr, weight_decay;
};
template <class B>
slice_rates rates_for(const parameter_slice<B>& slice, double lr, double weight_decay) {
  return {lr * slice.group.lr_scale, slice.group.weight_decay ? weight_decay : 0.0};
}

/// Rejects a learning rate given to `step` that is negative or not finite.
inline void check_step_lr(const char* optimizer, double lr) {
  require_non_negative(optimizer, "learning rate", lr);
}

/// Square root on host and device.
template <class T>
STRATA_HD inline T square_root(T x) {
  using std::sqrt;
  return sqrt(x);
}

/// `lerp` evaluated from a given end: from `a` (`FromA`) as `a + w (b - a)`, else from `b` as
/// `b - (b - a)(1 - w)`. For loops whose weight is fixed, so the end is chosen once outside.
template <bool FromA, class T>
STRATA_HD inline T lerp_from(T a, T b, T w) {
  return FromA ? a + w * (b - a) : b - (b - a) * (T(1) - w);
}

/// `a + w (b - a)`, evaluated as PyTorch's lerp does (from the nearer end), so that Adam's
/// `exp_avg.lerp_(grad, 1 - beta1)` rounds the same way.
template <class T>
STRATA_HD inline T lerp(T a, T b, T w) {
  return w < T(0.5) ? lerp_from<true>(a, b, w) : lerp_from<false>(a, b, w);
}

}  // namespace detail
}  // namespace strata
