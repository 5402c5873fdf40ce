#pragma once
/// \file xgboost_learner.hpp
/// Gradient-boosted trees (XGBoost, Debian's libxgboost-dev) as a learner for learning curves
/// (analysis/learning_curve.hpp): the baseline Partin et al. (2021) found to beat neural networks
/// at small training sizes on some datasets, so that the "curves cross" comparison can be made
/// on the same splits as the networks'. Link Strata::xgboost (built when CMake finds XGBoost).
///
/// Each task boosts regression trees (squared error) on the training set, one round at a time,
/// and stops when the validation MSE has not improved for `patience` rounds; the test set is
/// predicted by the trees of the best round. Trees are grown on one thread with the task's seed,
/// so the predictions are the same wherever the job runs. A task's strategy is ignored: trees do
/// not train data-parallel here (each rank of a group trains the same trees).

#include <cmath>
#include <cstdint>
#include <iomanip>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <xgboost/c_api.h>

#include "../core/error.hpp"
#include "learning_curve.hpp"

namespace strata {

/// Settings of the boosted trees.
struct xgboost_options {
  Index max_rounds = 1000;  ///< boosting rounds at most
  Index patience = 20;      ///< rounds without a better validation MSE before stopping
  double learning_rate = 0.1;
  Index max_depth = 6;
  double subsample = 1.0;         ///< rows per tree
  double column_subsample = 0.5;  ///< features per tree
  double min_child_weight = 1.0;
  double lambda = 1.0;  ///< L2 penalty on leaf weights

  void validate() const {
    if (max_rounds < 1 || patience < 1 || max_depth < 1 || !(learning_rate > 0.0) || !(subsample > 0.0 && subsample <= 1.0) ||
        !(column_subsample > 0.0 && column_subsample <= 1.0) || !(min_child_weight >= 0.0) || !(lambda >= 0.0))
      throw config_error(detail::concat("xgboost: invalid settings (rounds ", max_rounds, ", patience ", patience, ", depth ", max_depth,
                                        ", rate ", learning_rate, ", subsample ", subsample, ", column subsample ", column_subsample,
                                        ", min child weight ", min_child_weight, ", lambda ", lambda,
                                        "): counts and the rate must be positive, fractions in (0, 1], the rest >= 0"));
  }
};

namespace detail {

/// Throws io_error with XGBoost's own message when a C API call fails.
inline void xgboost_check(int status, const char* call) {
  if (status != 0) throw io_error(concat("xgboost: ", call, " failed: ", XGBGetLastError()));
}

/// An XGBoost matrix of a dataset's samples (features and responses), freed with it.
class xgboost_matrix {
 public:
  template <class T>
  explicit xgboost_matrix(const DrugResponseDataset<T>& set) {
    std::vector<Index> all(static_cast<std::size_t>(set.size()));
    for (Index i = 0; i < set.size(); ++i) all[static_cast<std::size_t>(i)] = i;
    host_matrix<T> x, y;
    set.gather(all.data(), set.size(), x, y);
    // x is features x samples, column-major: row-major samples x features, as XGBoost reads it.
    const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic> xf = x.template cast<float>();
    const Eigen::Matrix<float, 1, Eigen::Dynamic> yf = y.template cast<float>();
    xgboost_check(XGDMatrixCreateFromMat(xf.data(), static_cast<bst_ulong>(set.size()), static_cast<bst_ulong>(x.rows()),
                                         std::numeric_limits<float>::quiet_NaN(), &handle_),
                  "XGDMatrixCreateFromMat");
    if (XGDMatrixSetFloatInfo(handle_, "label", yf.data(), static_cast<bst_ulong>(yf.size())) != 0) {
      const std::string why = XGBGetLastError();
      XGDMatrixFree(handle_);  // the destructor does not run for a constructor that throws
      throw io_error("xgboost: XGDMatrixSetFloatInfo failed: " + why);
    }
    responses_ = yf.transpose().cast<double>();
  }
  xgboost_matrix(const xgboost_matrix&) = delete;
  xgboost_matrix& operator=(const xgboost_matrix&) = delete;
  ~xgboost_matrix() { XGDMatrixFree(handle_); }

  DMatrixHandle handle() const { return handle_; }
  const Eigen::VectorXd& responses() const { return responses_; }

 private:
  DMatrixHandle handle_ = nullptr;
  Eigen::VectorXd responses_;
};

/// A booster, freed with it.
class xgboost_booster {
 public:
  explicit xgboost_booster(const std::vector<DMatrixHandle>& cached) {
    xgboost_check(XGBoosterCreate(cached.data(), static_cast<bst_ulong>(cached.size()), &handle_), "XGBoosterCreate");
  }
  xgboost_booster(const xgboost_booster&) = delete;
  xgboost_booster& operator=(const xgboost_booster&) = delete;
  ~xgboost_booster() { XGBoosterFree(handle_); }

  void set(const char* name, const std::string& value) { xgboost_check(XGBoosterSetParam(handle_, name, value.c_str()), "XGBoosterSetParam"); }
  /// Predictions of the first `rounds` rounds' trees (0: all).
  Eigen::VectorXd predict(const xgboost_matrix& m, Index rounds) const {
    bst_ulong n = 0;
    const float* out = nullptr;
    xgboost_check(XGBoosterPredict(handle_, m.handle(), 0, static_cast<unsigned>(rounds), 0, &n, &out), "XGBoosterPredict");
    return Eigen::Map<const Eigen::VectorXf>(out, static_cast<Index>(n)).cast<double>();
  }
  BoosterHandle handle() const { return handle_; }

 private:
  BoosterHandle handle_ = nullptr;
};

}  // namespace detail

/// Boosted trees for learning-curve tasks (see the file comment).
class XGBoostLearner {
 public:
  explicit XGBoostLearner(xgboost_options options = {}) : options_(options) { options_.validate(); }

  template <class T, class Strategy>
  curve_outcome operator()(const curve_task<T>& task, Strategy) const {
    const detail::xgboost_matrix train(task.train_set()), validation(task.validation_set()), test(task.test_set());
    detail::xgboost_booster booster({train.handle(), validation.handle()});
    const auto text = [](double v) { return detail::concat(std::setprecision(17), v); };
    booster.set("objective", "reg:squarederror");
    booster.set("tree_method", "hist");
    booster.set("nthread", "1");
    booster.set("seed", std::to_string(task.seed & 0x7fffffffu));
    booster.set("eta", text(options_.learning_rate));
    booster.set("max_depth", std::to_string(options_.max_depth));
    booster.set("subsample", text(options_.subsample));
    booster.set("colsample_bytree", text(options_.column_subsample));
    booster.set("min_child_weight", text(options_.min_child_weight));
    booster.set("lambda", text(options_.lambda));
    booster.set("verbosity", "0");
    double best = std::numeric_limits<double>::infinity();
    Index best_rounds = 0, rounds = 0;
    while (rounds < options_.max_rounds && rounds - best_rounds < options_.patience) {
      detail::xgboost_check(XGBoosterUpdateOneIter(booster.handle(), static_cast<int>(rounds), train.handle()), "XGBoosterUpdateOneIter");
      ++rounds;
      const double mse = (booster.predict(validation, 0) - validation.responses()).squaredNorm() / static_cast<double>(task.validation.size());
      if (mse < best) best = mse, best_rounds = rounds;
    }
    if (best_rounds == 0)
      throw data_error(detail::concat("xgboost: model ", task.model, ", split ", task.split, ", size ", task.size,
                                      ": no boosting round gave a finite validation error"));
    const Eigen::VectorXd p = booster.predict(test, best_rounds);
    curve_outcome out;
    out.predictions = p.transpose().cast<float>();
    out.epochs = best_rounds;  // boosting rounds kept
    return out;
  }

 private:
  xgboost_options options_;
};

}  // namespace strata
