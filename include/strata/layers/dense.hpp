#pragma once
/// \file dense.hpp
/// Fully connected layer: `Y = W X + b`, W is `width x input_width`.

#include "../core/init.hpp"
#include "layer.hpp"

namespace strata {

template <class B>
class dense_layer;

/// A dense (fully connected) layer of `Width` outputs; `Dense<>` takes its width at run time:
/// `Dense<>{1000}`. Weights are He-normal by default, biases zero.
template <Index Width = dynamic>
struct Dense {
  static constexpr const char* kind = "Dense";
  template <Index In>
  static constexpr Index output_width = Width;
  template <class B>
  using impl = dense_layer<B>;

  Index width = Width;
  Init init = Init::he_normal;
  bool bias = true;

  Dense() = default;
  explicit Dense(Index w, Init i = Init::he_normal, bool with_bias = true)
      : width(w), init(i), bias(with_bias) {
    if (Width != dynamic && w != Width)
      throw shape_error(detail::concat("Dense<", Width, ">: constructed with width ", w));
  }
};

/// Dense layer bound to backend `B`.
template <class B>
class dense_layer {
 public:
  using matrix = typename B::matrix;
  using T = typename B::scalar;

  template <Index W>
  explicit dense_layer(const Dense<W>& spec) : width_(spec.width), init_(spec.init), bias_(spec.bias) {}

  Index build(build_context& ctx, Index input_width) {
    path_ = ctx.path();
    require_width(path_, width_);
    require_width(path_, input_width);
    B::resize(weight_, width_, input_width);
    B::resize(weight_grad_, width_, input_width);
    initialize<B>(weight_, init_, random_stream(ctx.seed(), purpose::initialization, ctx.take_layer_id()));
    B::fill(weight_grad_, T(0));
    if (bias_) {
      B::resize(bias_value_, width_, 1);
      B::resize(bias_grad_, width_, 1);
      B::fill(bias_value_, T(0));
      B::fill(bias_grad_, T(0));
    }
    return width_;
  }

  const matrix& forward(const matrix& x, const pass_info&) {
    if (x.rows() != weight_.cols())
      throw shape_error(detail::concat("layer '", path_, "': expects input of ", weight_.cols(),
                                       " rows, got ", shape_string(x.rows(), x.cols())));
    B::gemm(T(1), weight_, false, x, false, T(0), output_);
    if (bias_) B::add_bias(output_, bias_value_);
    return output_;
  }

  const matrix& backward(const matrix& x, const matrix& dy, const pass_info& pass, bool need_dx) {
    B::gemm(T(1), dy, false, x, true, T(0), weight_grad_);
    pass.gradient_ready(weight_grad_);
    if (bias_) {
      B::row_sum(dy, bias_grad_);
      pass.gradient_ready(bias_grad_);
    }
    // The input gradient comes last, so reducing this layer's gradients overlaps with it.
    if (need_dx) B::gemm(T(1), weight_, true, dy, false, T(0), input_grad_);
    return input_grad_;
  }

  template <class F>
  void for_each_parameter(F&& f) {
    f(parameter<B>{path_ + ".weight", &weight_, &weight_grad_});
    if (bias_) f(parameter<B>{path_ + ".bias", &bias_value_, &bias_grad_});
  }
  template <class F>
  void for_each_buffer(F&&) {}

  const matrix& weight() const { return weight_; }
  const std::string& path() const { return path_; }

 private:
  Index width_;
  Init init_;
  bool bias_;
  std::string path_;
  matrix weight_, weight_grad_, bias_value_, bias_grad_;
  matrix output_, input_grad_;
};

}  // namespace strata
