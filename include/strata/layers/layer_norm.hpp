#pragma once
/// \file layer_norm.hpp
/// Layer normalisation (Ba et al. 2016) over the features of each sample:
/// y = gamma * (x - mean) / sqrt(var + eps) + beta, gamma and beta per feature (eps 1e-5, as
/// PyTorch). Independent of the batch, so identical under any data-parallel split.

#include <cmath>

#include "layer.hpp"

namespace strata {

template <class B>
class layer_norm_layer;

/// Layer normalisation with an elementwise affine transform.
struct LayerNorm {
  static constexpr const char* kind = "LayerNorm";
  template <Index In>
  static constexpr Index output_width = In;
  template <class B>
  using impl = layer_norm_layer<B>;

  double eps = 1e-5;
};

/// LayerNorm bound to backend `B`.
template <class B>
class layer_norm_layer {
 public:
  using matrix = typename B::matrix;
  using T = typename B::scalar;

  explicit layer_norm_layer(const LayerNorm& spec) : eps_(spec.eps) {}

  Index build(build_context& ctx, Index width) {
    path_ = ctx.path();
    require_width(path_, width);
    for (auto* m : {&gamma_, &beta_, &gamma_grad_, &beta_grad_}) B::resize(*m, width, 1);
    B::fill(gamma_, T(1));
    B::fill(beta_, T(0));
    B::fill(gamma_grad_, T(0));
    B::fill(beta_grad_, T(0));
    return width;
  }

  const matrix& forward(const matrix& x, const pass_info&) {
    const Index rows = x.rows(), cols = x.cols();
    B::resize(output_, rows, cols);
    B::resize(normalized_, rows, cols);
    B::resize(inv_std_, 1, cols);
    const T* in = B::data(x);
    T* out = B::data(output_);
    T* xhat = B::data(normalized_);
    T* inv_std = B::data(inv_std_);
    const T* gamma = B::data(gamma_);
    const T* beta = B::data(beta_);
    const double eps = eps_;
    B::for_each(cols, [=] STRATA_HD(Index j) {
      const T* column = in + j * rows;
      double sum = 0, sq = 0;
      for (Index i = 0; i < rows; ++i) sum += column[i];
      const double m = sum / rows;
      for (Index i = 0; i < rows; ++i) sq += (column[i] - m) * (column[i] - m);
      const double s = 1.0 / sqrt(sq / rows + eps);
      inv_std[j] = static_cast<T>(s);
      for (Index i = 0; i < rows; ++i) {
        xhat[i + j * rows] = static_cast<T>((column[i] - m) * s);
        out[i + j * rows] = gamma[i] * xhat[i + j * rows] + beta[i];
      }
    });
    return output_;
  }

  const matrix& backward(const matrix& x, const matrix& dy, const pass_info& pass, bool need_dx) {
    const Index rows = x.rows(), cols = x.cols();
    const T* g = B::data(dy);
    const T* xhat = B::data(normalized_);
    const T* gamma = B::data(gamma_);
    const T* inv_std = B::data(inv_std_);
    T* dgamma = B::data(gamma_grad_);
    T* dbeta = B::data(beta_grad_);
    B::for_each(rows, [=] STRATA_HD(Index i) {
      double sum_g = 0, sum_gx = 0;
      for (Index j = 0; j < cols; ++j) {
        sum_g += g[i + j * rows];
        sum_gx += static_cast<double>(g[i + j * rows]) * xhat[i + j * rows];
      }
      dgamma[i] = static_cast<T>(sum_gx);
      dbeta[i] = static_cast<T>(sum_g);
    });
    pass.gradient_ready(gamma_grad_);
    pass.gradient_ready(beta_grad_);
    if (!need_dx) return input_grad_;
    B::resize(input_grad_, rows, cols);
    T* dx = B::data(input_grad_);
    B::for_each(cols, [=] STRATA_HD(Index j) {
      // With h = gamma * g: dx = inv_std / N (N h - sum h - xhat sum h xhat), per sample.
      double sum_h = 0, sum_hx = 0;
      for (Index i = 0; i < rows; ++i) {
        const double h = static_cast<double>(gamma[i]) * g[i + j * rows];
        sum_h += h;
        sum_hx += h * xhat[i + j * rows];
      }
      for (Index i = 0; i < rows; ++i) {
        const Index k = i + j * rows;
        const double h = static_cast<double>(gamma[i]) * g[k];
        dx[k] = static_cast<T>(inv_std[j] / rows * (rows * h - sum_h - xhat[k] * sum_hx));
      }
    });
    return input_grad_;
  }

  template <class W>
  void describe(W& w) const {
    w.field("eps", eps_);
  }
  template <class F>
  void for_each_parameter(F&& f) {
    f(parameter<B>{path_ + ".weight", &gamma_, &gamma_grad_});
    f(parameter<B>{path_ + ".bias", &beta_, &beta_grad_});
  }
  template <class F>
  void for_each_buffer(F&&) {}

 private:
  double eps_;
  std::string path_;
  typename B::parameter_matrix gamma_, beta_, gamma_grad_, beta_grad_;
  matrix inv_std_, normalized_, output_, input_grad_;
};

}  // namespace strata
