#pragma once
/// \file residual.hpp
/// `Residual<Net>`: y = x + Net(x). The inner network must keep the width.

#include "../layers/layer.hpp"
#include "sequential.hpp"

namespace strata {

template <class B, class Net>
class residual_layer;

/// A skip connection around `Net`.
template <class Net>
struct Residual {
  static constexpr const char* kind = "Residual";
  template <Index In>
  struct rule {
    static constexpr Index inner = Net::template output_width<In>;
    static_assert(!both_known(In, inner) || inner == In,
                  "strata::Residual: the inner network must keep the width of its input");
    static constexpr Index value = In != dynamic ? In : inner;
  };
  template <Index In>
  static constexpr Index output_width = rule<In>::value;
  template <class B>
  using impl = residual_layer<B, Net>;

  Net net;

  Residual() = default;
  Residual(Net n) : net(std::move(n)) {}
};

/// Residual bound to backend `B`.
template <class B, class Net>
class residual_layer {
 public:
  using matrix = typename B::matrix;
  using T = typename B::scalar;

  explicit residual_layer(const Residual<Net>& spec) : net_(spec.net) {}

  Index build(build_context& ctx, Index input_width) {
    path_ = ctx.path();
    build_context child = ctx.child(0, Net::kind);
    net_path_ = child.path();
    const Index out = net_.build(child, input_width);
    if (out != input_width)
      throw shape_error(detail::concat("layer '", path_, "': the inner network maps width ", input_width,
                                       " to width ", out, "; a residual connection needs equal widths"));
    return out;
  }

  const matrix& forward(const matrix& x, const pass_info& pass) {
    const matrix& y = detail::checked_forward<B>(net_, x, pass, net_path_);
    B::resize(output_, x.rows(), x.cols());
    const T* a = B::data(x);
    const T* b = B::data(y);
    T* out = B::data(output_);
    B::for_each(x.rows() * x.cols(), [a, b, out] STRATA_HD(Index i) { out[i] = a[i] + b[i]; });
    return output_;
  }

  const matrix& backward(const matrix& x, const matrix& dy, const pass_info& pass, bool need_dx) {
    const matrix& g = net_.backward(x, dy, pass, need_dx);
    if (!need_dx) return input_grad_;
    B::resize(input_grad_, x.rows(), x.cols());
    const T* a = B::data(dy);
    const T* b = B::data(g);
    T* out = B::data(input_grad_);
    B::for_each(x.rows() * x.cols(), [a, b, out] STRATA_HD(Index i) { out[i] = a[i] + b[i]; });
    return input_grad_;
  }

  template <class F>
  void for_each_parameter(F&& f) { net_.for_each_parameter(f); }
  template <class W>
  void describe(W& w) const {
    w.child(0, Net::kind, net_);
  }
  template <class F>
  void for_each_buffer(F&& f) { net_.for_each_buffer(f); }
  template <class F>
  void for_each_setting(F&& f) { detail::visit_settings(net_, f); }

 private:
  bind_t<Net, B> net_;
  std::string path_, net_path_;
  matrix output_, input_grad_;
};

}  // namespace strata
