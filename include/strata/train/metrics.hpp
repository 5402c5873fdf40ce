#pragma once
/// \file metrics.hpp
/// Host-side evaluation metrics for regression, in double: mse, mae, rmse, r2, pearson and
/// spearman, plus the `metric` enumeration that configuration files and early stopping use.
///
/// Every function takes the prediction and the target as Eigen matrices or vectors of double of
/// the same shape and treats all their elements as one set of samples (pass one row, e.g.
/// `pred.row(k).transpose()`, for a per-output metric; cast float data with `.cast<double>()`).

#include <algorithm>
#include <cctype>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "../core/error.hpp"

namespace strata {

/// A read-only view of any double matrix or vector expression.
using metric_input = Eigen::Ref<const Eigen::MatrixXd>;

namespace detail {

/// Throws a data_error naming the metric when the shapes differ or there are fewer than
/// `min_samples` elements.
inline void check_metric_input(const char* metric, const metric_input& prediction,
                               const metric_input& target, Index min_samples) {
  if (prediction.rows() != target.rows() || prediction.cols() != target.cols())
    throw data_error(concat("metric ", metric, ": prediction is ",
                            shape_string(prediction.rows(), prediction.cols()), " but target is ",
                            shape_string(target.rows(), target.cols())));
  if (prediction.size() < min_samples)
    throw data_error(concat("metric ", metric, " needs at least ", min_samples,
                            " samples, got ", prediction.size()));
}

/// Pearson correlation of two same-size sets; 0 when either is constant (see `pearson`).
inline double correlation(const Eigen::ArrayXd& x, const Eigen::ArrayXd& y) {
  // Centre first (two passes): the one-pass formula cancels catastrophically for data with a
  // large mean and a small spread.
  const Eigen::ArrayXd dx = x - x.mean();
  const Eigen::ArrayXd dy = y - y.mean();
  const double sxx = dx.square().sum(), syy = dy.square().sum();
  if (sxx == 0.0 || syy == 0.0) return 0.0;
  // Clamp: rounding can push a perfect correlation a hair beyond +-1.
  return std::clamp((dx * dy).sum() / std::sqrt(sxx * syy), -1.0, 1.0);
}

/// Ranks 1..n of the elements, tied elements sharing the mean of their ranks (the "average"
/// method, as scipy.stats.rankdata and spearmanr).
inline Eigen::ArrayXd average_ranks(const Eigen::ArrayXd& x) {
  const Index n = x.size();
  std::vector<Index> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), Index{0});
  std::stable_sort(order.begin(), order.end(), [&x](Index a, Index b) { return x(a) < x(b); });
  Eigen::ArrayXd ranks(n);
  for (Index first = 0; first < n;) {
    Index last = first;  // one past the run of equal values
    while (last < n && x(order[static_cast<std::size_t>(last)]) ==
                           x(order[static_cast<std::size_t>(first)]))
      ++last;
    // Positions first..last-1 hold ranks first+1..last, whose mean is (first + 1 + last) / 2.
    const double rank = 0.5 * static_cast<double>(first + 1 + last);
    for (Index k = first; k < last; ++k) ranks(order[static_cast<std::size_t>(k)]) = rank;
    first = last;
  }
  return ranks;
}

/// The elements of a matrix as one column (column-major order).
inline Eigen::ArrayXd flatten(const metric_input& m) {
  Eigen::ArrayXd out(m.size());
  Index k = 0;
  for (Index j = 0; j < m.cols(); ++j)
    for (Index i = 0; i < m.rows(); ++i) out(k++) = m(i, j);
  return out;
}

}  // namespace detail

/// Mean squared error, `mean((p - t)^2)`. Throws data_error on a shape mismatch or no samples.
inline double mse(const metric_input& prediction, const metric_input& target) {
  detail::check_metric_input("mse", prediction, target, 1);
  return (prediction - target).array().square().mean();
}

/// Mean absolute error, `mean(|p - t|)`. Throws data_error on a shape mismatch or no samples.
inline double mae(const metric_input& prediction, const metric_input& target) {
  detail::check_metric_input("mae", prediction, target, 1);
  return (prediction - target).array().abs().mean();
}

/// Root mean squared error, `sqrt(mse)`. Throws data_error on a shape mismatch or no samples.
inline double rmse(const metric_input& prediction, const metric_input& target) {
  detail::check_metric_input("rmse", prediction, target, 1);
  return std::sqrt(mse(prediction, target));
}

/// Coefficient of determination, `1 - SS_res / SS_tot` with SS_tot the spread of the target
/// around its mean: 1 for a perfect prediction, 0 for predicting the mean, negative when worse.
/// A constant target (SS_tot = 0) gives 1 for a perfect prediction and 0 otherwise, as
/// scikit-learn's r2_score, so that the result is always finite. Needs at least 2 samples.
inline double r2(const metric_input& prediction, const metric_input& target) {
  detail::check_metric_input("r2", prediction, target, 2);
  const double ss_res = (prediction - target).array().square().sum();
  const double ss_tot = (target.array() - target.mean()).square().sum();
  if (ss_tot == 0.0) return ss_res == 0.0 ? 1.0 : 0.0;
  return 1.0 - ss_res / ss_tot;
}

/// Pearson correlation coefficient in [-1, 1]. When the prediction or the target is constant
/// the coefficient is undefined; it is reported as 0 (no measurable association) rather than NaN,
/// so that a model that has collapsed to a constant output ranks below any correlated one in
/// model selection. Needs at least 2 samples.
inline double pearson(const metric_input& prediction, const metric_input& target) {
  detail::check_metric_input("pearson", prediction, target, 2);
  return detail::correlation(detail::flatten(prediction), detail::flatten(target));
}

/// Spearman rank correlation: the Pearson correlation of the ranks, tied values sharing their
/// average rank. 0 when either side is constant, as `pearson`; NaN when either holds a NaN (as
/// the other metrics, whose arithmetic propagates it). Needs at least 2 samples.
inline double spearman(const metric_input& prediction, const metric_input& target) {
  detail::check_metric_input("spearman", prediction, target, 2);
  // Sorting values that include NaN has no defined order, so answer before ranking.
  if (prediction.hasNaN() || target.hasNaN()) return std::nan("");
  return detail::correlation(detail::average_ranks(detail::flatten(prediction)),
                             detail::average_ranks(detail::flatten(target)));
}

/// A metric chosen by name (configuration, early stopping, model selection).
enum class metric { mse, mae, rmse, r2, pearson, spearman };

/// The lower-case name of a metric, as `parse_metric` accepts it.
inline const char* to_string(metric m) {
  switch (m) {
    case metric::mse: return "mse";
    case metric::mae: return "mae";
    case metric::rmse: return "rmse";
    case metric::r2: return "r2";
    case metric::pearson: return "pearson";
    case metric::spearman: return "spearman";
  }
  return "unknown";
}

/// The metric called `name` (case-insensitive); throws config_error listing the valid names.
inline metric parse_metric(const std::string& name) {
  std::string lower = name;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  constexpr metric all[] = {metric::mse, metric::mae, metric::rmse,
                            metric::r2, metric::pearson, metric::spearman};
  for (metric m : all)
    if (lower == to_string(m)) return m;
  throw config_error(detail::concat("unknown metric '", name,
                                    "'; valid metrics are mse, mae, rmse, r2, pearson, spearman"));
}

/// True when a larger value is better (r2, pearson, spearman), false for the errors.
inline bool higher_is_better(metric m) {
  return m == metric::r2 || m == metric::pearson || m == metric::spearman;
}

/// Computes metric `m` of `prediction` against `target`.
inline double compute(metric m, const metric_input& prediction, const metric_input& target) {
  switch (m) {
    case metric::mse: return mse(prediction, target);
    case metric::mae: return mae(prediction, target);
    case metric::rmse: return rmse(prediction, target);
    case metric::r2: return r2(prediction, target);
    case metric::pearson: return pearson(prediction, target);
    case metric::spearman: return spearman(prediction, target);
  }
  throw config_error("compute: invalid metric value");
}

}  // namespace strata
