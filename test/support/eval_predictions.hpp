#pragma once
// Evaluation-mode predictions of every sample of a dataset in one forward pass: what the
// inference tests compare streamed, sampled or reloaded predictions with.
#include <numeric>
#include <vector>

#include <strata/core/tensor.hpp>
#include <strata/layers/layer.hpp>

namespace strata::testing {

template <class ModelT, class Dataset>
host_matrix<typename Dataset::scalar> eval_predictions(ModelT& model, const Dataset& data) {
  host_matrix<typename Dataset::scalar> x, y;
  std::vector<Index> all(static_cast<std::size_t>(data.size()));
  std::iota(all.begin(), all.end(), Index{0});
  data.gather(all.data(), data.size(), x, y);
  pass_info eval;
  eval.phase = mode::eval;
  return model.forward(x, eval);
}

}  // namespace strata::testing
