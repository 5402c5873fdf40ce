#pragma once
/// \file evaluator.hpp
/// Evaluation-mode passes over a whole dataset, as the trainer runs them: predictions in
/// batches spread over the strategy's ranks and gathered on every rank (with the targets they
/// belong to), and the loss and regression metrics computed from them.

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <string>
#include <vector>

#include "../backend/eigen_backend.hpp"
#include "../core/tensor.hpp"
#include "../layers/layer.hpp"
#include "batch_stage.hpp"
#include "metrics.hpp"

namespace strata {

/// Loss and metrics of a model on a dataset.
struct evaluation {
  double loss = 0.0;
  std::map<std::string, double> metrics;  ///< mse, mae, rmse, r2, pearson, spearman
};

/// Runs a model on backend B in evaluation mode over datasets; keeps the gathered batches it
/// reuses. Collective over the strategy's ranks: every rank gets every prediction.
template <class B>
class evaluator {
 public:
  using T = typename B::scalar;

  /// Predictions for every sample of `data` (`outputs x samples`) and the matching targets,
  /// `batch` samples per pass, each pass split by `strategy.local_range`; the staged inputs go
  /// through `stage` (the trainer's, so no second staging buffer). `check_finite` names the first
  /// layer that produces NaN or infinity.
  template <class ModelT, class Strategy, class Dataset>
  void predict(ModelT& model, Strategy& strategy, batch_stage<B>& stage, const Dataset& data, Index batch, bool check_finite,
               host_matrix<T>& predictions, host_matrix<T>& targets) {
    const Index n = data.size();
    std::vector<Index> local;
    host_matrix<T> all_predictions(model.output_width(), n), all_targets(data.target_width(), n);
    Index filled = 0;
    for (Index begin = 0; begin < n; begin += batch) {
      const Index global = std::min(batch, n - begin);
      const auto [offset, count] = strategy.local_range(global);
      local.resize(static_cast<std::size_t>(count));
      std::iota(local.begin(), local.end(), begin + offset);
      data.gather(local.data(), count, x_, y_);
      pass_info pass;
      pass.phase = mode::eval;
      pass.first_sample = static_cast<std::uint64_t>(begin + offset);
      pass.check_finite = check_finite;
      B::download(model.forward(stage.stage_inputs(x_), pass), part_);
      strategy.gather(part_);
      strategy.gather(y_);
      all_predictions.middleCols(filled, part_.cols()) = part_;
      all_targets.middleCols(filled, y_.cols()) = y_;
      filled += part_.cols();
    }
    predictions = all_predictions.leftCols(filled);
    targets = all_targets.leftCols(filled);
  }

  /// Loss (`loss` over all outputs, as in training) and metrics of the model on `data`.
  template <class ModelT, class Loss, class Strategy, class Dataset>
  evaluation evaluate(ModelT& model, Loss& loss, Strategy& strategy, batch_stage<B>& stage, const Dataset& data, Index batch,
                      bool check_finite) {
    host_matrix<T> predictions, targets;
    predict(model, strategy, stage, data, batch, check_finite, predictions, targets);
    evaluation result;
    const matrix_d p = predictions.template cast<double>(), t = targets.template cast<double>();
    using H = EigenBackend<T>;
    typename H::matrix grad;
    const double count = static_cast<double>(predictions.size());
    result.loss = count > 0 ? loss.template evaluate<H>(predictions, targets, grad, count) / count : NAN;
    for (metric m : {metric::mse, metric::mae, metric::rmse, metric::r2, metric::pearson, metric::spearman})
      result.metrics[to_string(m)] = p.size() >= 2 ? compute(m, p, t) : NAN;
    return result;
  }

 private:
  host_matrix<T> x_, y_, part_;  ///< a pass's gathered inputs and targets, its predictions
};

}  // namespace strata
