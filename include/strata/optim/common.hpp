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
/// The impl is constructed from the spec and the model's parameter list, allocates its
/// per-parameter buffers once (zeroed, as PyTorch's lazily created state) and offers
///   `void step(std::vector<parameter<B>>& params, double lr)`   one in-place update, with the
///        learning rate given by the caller (a schedule's output) rather than the spec's
///   `template <class F> void for_each_state(F&& f)`   f(name, B::matrix&) for every state
///        tensor, named "<parameter name>.<PyTorch state name>" (e.g. "...weight.exp_avg")
///   `std::uint64_t step_count() const`, `void set_step_count(std::uint64_t)`   the scalar state
/// Together, for_each_state and the step count are everything a checkpoint needs to resume
/// bit-identically. Updates follow PyTorch's single-tensor (foreach=False) code path operation
/// by operation, in B::scalar, with scalar factors (bias corrections) computed in double.

#include <cmath>
#include <cstdint>
#include <string>
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

/// Checks that `params` is the list the state was built for: same count, same shapes, and
/// gradients shaped like their values.
template <class B>
void check_parameters(const char* optimizer, const std::vector<parameter<B>>& params,
                      const std::vector<std::string>& names,
                      const std::vector<Index>& sizes) {
  if (params.size() != names.size())
    throw shape_error(concat(optimizer, ": built for ", names.size(), " parameters, stepped with ",
                             params.size()));
  for (std::size_t k = 0; k < params.size(); ++k) {
    const auto& v = *params[k].value;
    const auto& g = *params[k].gradient;
    if (v.rows() * v.cols() != sizes[k])
      throw shape_error(concat(optimizer, ": parameter '", params[k].name, "' has ",
                               v.rows() * v.cols(), " elements but its state was built for ",
                               sizes[k], " (parameter '", names[k], "')"));
    if (g.rows() != v.rows() || g.cols() != v.cols())
      throw shape_error(concat(optimizer, ": gradient of '", params[k].name, "' is ",
                               shape_string(g.rows(), g.cols()), " but the parameter is ",
                               shape_string(v.rows(), v.cols())));
  }
}

/// Rejects a learning rate given to `step` that is negative or not finite.
inline void check_step_lr(const char* optimizer, double lr) {
  require_non_negative(optimizer, "learning rate", lr);
}

/// A state buffer shaped like `value` and filled with `init`.
template <class B>
typename B::matrix state_like(const typename B::matrix& value, double init) {
  typename B::matrix m;
  B::resize(m, value.rows(), value.cols());
  B::fill(m, static_cast<typename B::scalar>(init));
  return m;
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
