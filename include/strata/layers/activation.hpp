#pragma once
/// \file activation.hpp
/// Element-wise activations: ReLU, LeakyReLU, ELU, Sigmoid, Tanh. Each is a small functor with
/// `value(x)` and `derivative(x, y)` (y = value(x), so sigmoid and tanh reuse their output),
/// run by one generic layer on any backend.

#include <cmath>

#include "layer.hpp"

namespace strata {

namespace activation {

/// max(x, 0); derivative 0 at x = 0 (as PyTorch).
struct relu {
  template <class T>
  STRATA_HD T value(T x) const { return x > T(0) ? x : T(0); }
  template <class T>
  STRATA_HD T derivative(T x, T) const { return x > T(0) ? T(1) : T(0); }
};

/// x for x > 0, slope * x otherwise (PyTorch's default slope 0.01).
struct leaky_relu {
  double slope = 0.01;
  template <class W>
  void describe(W& w) const { w.field("negative_slope", slope); }
  template <class T>
  STRATA_HD T value(T x) const { return x > T(0) ? x : static_cast<T>(slope) * x; }
  template <class T>
  STRATA_HD T derivative(T x, T) const { return x > T(0) ? T(1) : static_cast<T>(slope); }
};

/// x for x > 0, alpha * (exp(x) - 1) otherwise (alpha = 1 by default, as PyTorch).
struct elu {
  double alpha = 1.0;
  template <class W>
  void describe(W& w) const { w.field("alpha", alpha); }
  template <class T>
  STRATA_HD T value(T x) const {
    using std::exp;
    return x > T(0) ? x : static_cast<T>(alpha) * (exp(x) - T(1));
  }
  template <class T>
  STRATA_HD T derivative(T x, T y) const { return x > T(0) ? T(1) : y + static_cast<T>(alpha); }
};

/// 1 / (1 + exp(-x)).
struct sigmoid {
  template <class T>
  STRATA_HD T value(T x) const {
    using std::exp;
    return T(1) / (T(1) + exp(-x));
  }
  template <class T>
  STRATA_HD T derivative(T, T y) const { return y * (T(1) - y); }
};

/// tanh(x).
struct tanh {
  template <class T>
  STRATA_HD T value(T x) const {
    using std::tanh;
    return tanh(x);
  }
  template <class T>
  STRATA_HD T derivative(T, T y) const { return T(1) - y * y; }
};

}  // namespace activation

/// An element-wise activation layer bound to backend `B`.
template <class B, class Fn>
class activation_layer {
 public:
  using matrix = typename B::matrix;
  using T = typename B::scalar;

  template <class Spec>
  explicit activation_layer(const Spec& spec) : fn_(spec.function()) {}

  Index build(build_context& ctx, Index input_width) {
    path_ = ctx.path();
    require_width(path_, input_width);
    return input_width;
  }

  const matrix& forward(const matrix& x, const pass_info&) {
    B::resize(output_, x.rows(), x.cols());
    const T* in = B::data(x);
    T* out = B::data(output_);
    const Fn fn = fn_;
    B::for_each(x.rows() * x.cols(), [in, out, fn] STRATA_HD(Index i) { out[i] = fn.value(in[i]); });
    return output_;
  }

  const matrix& backward(const matrix& x, const matrix& dy, const pass_info&, bool need_dx) {
    if (!need_dx) return input_grad_;
    B::resize(input_grad_, x.rows(), x.cols());
    const T* in = B::data(x);
    const T* out = B::data(output_);
    const T* g = B::data(dy);
    T* dx = B::data(input_grad_);
    const Fn fn = fn_;
    B::for_each(x.rows() * x.cols(), [in, out, g, dx, fn] STRATA_HD(Index i) {
      dx[i] = g[i] * fn.derivative(in[i], out[i]);
    });
    return input_grad_;
  }

  template <class W>
  void describe(W& w) const { detail::describe_layer(fn_, w); }
  template <class F>
  void for_each_parameter(F&&) {}
  template <class F>
  void for_each_buffer(F&&) {}

 private:
  Fn fn_;
  std::string path_;
  matrix output_, input_grad_;
};

/// Spec of a parameter-free activation: `Name::value` is the kind shown in messages. (A type
/// rather than a `const char*` template argument: nvcc 13 emits the address of a character array
/// as `&array` in its host stubs, which g++ then rejects as the wrong pointer type.)
template <class Fn, class Name>
struct plain_activation {
  static constexpr const char* kind = Name::value;
  template <Index In>
  static constexpr Index output_width = In;
  template <class B>
  using impl = activation_layer<B, Fn>;
  Fn function() const { return Fn{}; }
};

namespace detail {
struct relu_name {
  static constexpr const char* value = "ReLU";
};
struct sigmoid_name {
  static constexpr const char* value = "Sigmoid";
};
struct tanh_name {
  static constexpr const char* value = "Tanh";
};
}  // namespace detail

/// Rectified linear unit.
using ReLU = plain_activation<activation::relu, detail::relu_name>;
/// Logistic sigmoid.
using Sigmoid = plain_activation<activation::sigmoid, detail::sigmoid_name>;
/// Hyperbolic tangent.
using Tanh = plain_activation<activation::tanh, detail::tanh_name>;

/// Leaky ReLU with a run-time slope (default 0.01).
struct LeakyReLU {
  static constexpr const char* kind = "LeakyReLU";
  template <Index In>
  static constexpr Index output_width = In;
  template <class B>
  using impl = activation_layer<B, activation::leaky_relu>;
  double slope = 0.01;
  LeakyReLU() = default;
  explicit LeakyReLU(double s) : slope(s) {}
  activation::leaky_relu function() const { return {slope}; }
};

/// Exponential linear unit with a run-time alpha (default 1).
struct ELU {
  static constexpr const char* kind = "ELU";
  template <Index In>
  static constexpr Index output_width = In;
  template <class B>
  using impl = activation_layer<B, activation::elu>;
  double alpha = 1.0;
  ELU() = default;
  explicit ELU(double a) : alpha(a) {}
  activation::elu function() const { return {alpha}; }
};

}  // namespace strata
