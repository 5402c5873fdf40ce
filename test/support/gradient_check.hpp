#pragma once
// Finite-difference gradient checks for any architecture, in double precision.
//
// The scalar checked is L = sum(R .* y) for a fixed random R, so dL/dy = R. Every parameter
// (all entries of small tensors, a spread sample of large ones) and the input are perturbed by
// +/- h and the central difference is compared with what backward computed.

#include <catch2/catch.hpp>

#include <strata/backend/eigen_backend.hpp>
#include <strata/graph/model.hpp>

#include <algorithm>
#include <cmath>
#include <string>

namespace strata::testing {

/// A reproducible random host matrix with entries in [-1, 1).
inline matrix_d random_matrix(Index rows, Index cols, std::uint64_t seed) {
  const random_stream rng(seed, purpose::user);
  matrix_d m(rows, cols);
  for (Index i = 0; i < m.size(); ++i) m.data()[i] = 2.0 * rng.uniform(static_cast<std::uint64_t>(i)) - 1.0;
  return m;
}

struct gradient_check_options {
  mode phase = mode::train;
  double step = 1e-6;
  double tolerance = 1e-6;  // on |analytic - numeric| / max(1, |analytic|, |numeric|)
  Index max_entries_per_tensor = 40;
};

/// Checks all parameter gradients and the input gradient of `spec` on a random batch.
template <class Spec>
void check_gradients(const Spec& spec, Index input_width, Index batch, std::uint64_t seed = 1,
                     gradient_check_options options = {}) {
  using B = EigenBackend<double>;
  Model<Spec, B> model(spec);
  model.build(input_width, seed);
  // Biases start at zero, which puts a sample whose inputs are all zero (after ReLU and
  // dropout) exactly on ReLU's kink, where finite differences are meaningless: move every
  // parameter off its initial value.
  std::uint64_t salt = 0;
  for (auto& p : model.parameters())
    *p.value += 0.1 * random_matrix(p.value->rows(), p.value->cols(), seed + 300 + salt++);
  matrix_d x = random_matrix(input_width, batch, seed + 100);
  pass_info pass;
  pass.phase = options.phase;
  pass.step = 3;

  const matrix_d r = random_matrix(model.output_width(), batch, seed + 200);
  auto loss = [&]() { return model.forward(x, pass).cwiseProduct(r).sum(); };

  loss();
  const matrix_d input_grad = model.backward(r, true);
  std::vector<matrix_d> analytic;
  for (auto& p : model.parameters()) analytic.push_back(*p.gradient);

  auto compare = [&](double a, double n, const std::string& what) {
    const double scale = std::max({1.0, std::abs(a), std::abs(n)});
    INFO(what << ": analytic " << a << ", numeric " << n);
    CHECK(std::abs(a - n) / scale < options.tolerance);
  };
  auto probe = [&](auto& m, const matrix_d& grad, const std::string& name) {
    const Index n = m.size();
    const Index stride = std::max<Index>(1, n / options.max_entries_per_tensor);
    for (Index i = 0; i < n; i += stride) {
      const double saved = m.data()[i];
      m.data()[i] = saved + options.step;
      const double up = loss();
      m.data()[i] = saved - options.step;
      const double down = loss();
      m.data()[i] = saved;
      compare(grad.data()[i], (up - down) / (2 * options.step), name + "[" + std::to_string(i) + "]");
    }
  };

  std::size_t k = 0;
  for (auto& p : model.parameters()) probe(*p.value, analytic[k++], p.name);
  probe(x, input_grad, "input");
  CHECK(k == analytic.size());
}

}  // namespace strata::testing
