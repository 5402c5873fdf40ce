#pragma once
// A small nonlinear regression task for the parallel-training tests: standard normal features
// and y = tanh(x0 x4 + x[features-3]) + 0.5 x1, drawn from (salt) so every rank draws the same.
#include <cmath>
#include <cstdint>

#include <strata/core/random.hpp>
#include <strata/data/dataset.hpp>

namespace strata::testing {

inline MatrixDataset<float> toy_regression(Index features, Index n, std::uint64_t salt) {
  const random_stream rng(5, purpose::data, salt);
  matrix_f x(features, n), y(1, n);
  for (Index i = 0; i < x.size(); ++i) x.data()[i] = static_cast<float>(rng.normal(static_cast<std::uint64_t>(i)));
  for (Index j = 0; j < n; ++j) y(0, j) = std::tanh(x(0, j) * x(4, j) + x(features - 3, j)) + 0.5f * x(1, j);
  return {x, y};
}

}  // namespace strata::testing
