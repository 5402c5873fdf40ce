#pragma once
/// \file batch_norm.hpp
/// Batch normalisation (Ioffe & Szegedy 2015) over the samples of a batch, per feature:
/// y = gamma * (x - mean) / sqrt(var + eps) + beta. Training uses the batch statistics and
/// updates running estimates (momentum 0.1, unbiased variance, as PyTorch); evaluation uses the
/// running estimates. Under data parallelism the statistics are those of each rank's shard.

#include <cmath>

#include "layer.hpp"

namespace strata {

template <class B>
class batch_norm_layer;

/// Batch normalisation with PyTorch's defaults (eps 1e-5, momentum 0.1).
struct BatchNorm {
  static constexpr const char* kind = "BatchNorm";
  template <Index In>
  static constexpr Index output_width = In;
  template <class B>
  using impl = batch_norm_layer<B>;

  double eps = 1e-5;
  double momentum = 0.1;
};

/// BatchNorm bound to backend `B`.
template <class B>
class batch_norm_layer {
 public:
  using matrix = typename B::matrix;
  using T = typename B::scalar;

  explicit batch_norm_layer(const BatchNorm& spec) : eps_(spec.eps), momentum_(spec.momentum) {}

  Index build(build_context& ctx, Index width) {
    path_ = ctx.path();
    require_width(path_, width);
    for (auto* m : {&gamma_, &beta_, &gamma_grad_, &beta_grad_}) B::resize(*m, width, 1);
    for (matrix* m : {&running_mean_, &running_var_, &mean_, &inv_std_}) B::resize(*m, width, 1);
    B::fill(gamma_, T(1));
    B::fill(beta_, T(0));
    B::fill(gamma_grad_, T(0));
    B::fill(beta_grad_, T(0));
    B::fill(running_mean_, T(0));
    B::fill(running_var_, T(1));
    return width;
  }

  const matrix& forward(const matrix& x, const pass_info& pass) {
    const Index rows = x.rows(), cols = x.cols();
    B::resize(output_, rows, cols);
    B::resize(normalized_, rows, cols);
    const T* in = B::data(x);
    T* out = B::data(output_);
    T* xhat = B::data(normalized_);
    T* mean = B::data(mean_);
    T* inv_std = B::data(inv_std_);
    const T* gamma = B::data(gamma_);
    const T* beta = B::data(beta_);
    T* run_mean = B::data(running_mean_);
    T* run_var = B::data(running_var_);
    const double eps = eps_, momentum = momentum_;
    if (pass.phase == mode::train) {
      if (cols < 2)
        throw shape_error(detail::concat("layer '", path_, "': batch normalisation needs at least 2 samples in training, got ", cols));
      B::for_each(rows, [=] STRATA_HD(Index i) {
        double sum = 0, sq = 0;
        for (Index j = 0; j < cols; ++j) sum += in[i + j * rows];
        const double m = sum / cols;
        for (Index j = 0; j < cols; ++j) {
          const double d = in[i + j * rows] - m;
          sq += d * d;
        }
        const double var = sq / cols;
        mean[i] = static_cast<T>(m);
        inv_std[i] = static_cast<T>(1.0 / sqrt(var + eps));
        run_mean[i] = static_cast<T>((1 - momentum) * run_mean[i] + momentum * m);
        run_var[i] = static_cast<T>((1 - momentum) * run_var[i] + momentum * sq / (cols - 1));
      });
    } else {
      B::for_each(rows, [=] STRATA_HD(Index i) {
        mean[i] = run_mean[i];
        inv_std[i] = static_cast<T>(1.0 / sqrt(static_cast<double>(run_var[i]) + eps));
      });
    }
    B::for_each(rows * cols, [=] STRATA_HD(Index k) {
      const Index i = k % rows;
      xhat[k] = (in[k] - mean[i]) * inv_std[i];
      out[k] = gamma[i] * xhat[k] + beta[i];
    });
    training_ = pass.phase == mode::train;
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
    if (need_dx) B::resize(input_grad_, rows, cols);
    T* dx = need_dx ? B::data(input_grad_) : nullptr;
    const bool training = training_;
    B::for_each(rows, [=] STRATA_HD(Index i) {
      double sum_g = 0, sum_gx = 0;
      for (Index j = 0; j < cols; ++j) {
        sum_g += g[i + j * rows];
        sum_gx += static_cast<double>(g[i + j * rows]) * xhat[i + j * rows];
      }
      dgamma[i] = static_cast<T>(sum_gx);
      dbeta[i] = static_cast<T>(sum_g);
      if (dx == nullptr) return;
      // d(loss)/dx through the batch statistics: (gamma * inv_std / N) (N g - sum g - xhat sum g xhat)
      const double scale = static_cast<double>(gamma[i]) * inv_std[i];
      for (Index j = 0; j < cols; ++j) {
        const Index k = i + j * rows;
        dx[k] = training ? static_cast<T>(scale / cols * (cols * static_cast<double>(g[k]) - sum_g - xhat[k] * sum_gx))
                         : static_cast<T>(scale * g[k]);
      }
    });
    pass.gradient_ready(gamma_grad_);
    pass.gradient_ready(beta_grad_);
    return input_grad_;
  }

  template <class W>
  void describe(W& w) const {
    w.field("eps", eps_);
    w.field("momentum", momentum_);
  }
  template <class F>
  void for_each_parameter(F&& f) {
    f(parameter<B>{path_ + ".weight", &gamma_, &gamma_grad_});
    f(parameter<B>{path_ + ".bias", &beta_, &beta_grad_});
  }
  template <class F>
  void for_each_buffer(F&& f) {
    f(buffer<B>{path_ + ".running_mean", &running_mean_});
    f(buffer<B>{path_ + ".running_var", &running_var_});
  }

 private:
  double eps_, momentum_;
  bool training_ = true;
  std::string path_;
  typename B::parameter_matrix gamma_, beta_, gamma_grad_, beta_grad_;
  matrix running_mean_, running_var_;
  matrix mean_, inv_std_, normalized_, output_, input_grad_;
};

}  // namespace strata
