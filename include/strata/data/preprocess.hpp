#pragma once
/// \file preprocess.hpp
/// Feature preparation for entity tables, as CANDLE prepares Combo data (docs/design.md §2): drop
/// columns with no value at all, fill missing values with the column mean, standard-scale. The
/// statistics come from the training split's entities only, so nothing about the validation
/// entities leaks into training, and they travel with the model in its checkpoint.

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "../io/state_file.hpp"
#include "entity_table.hpp"

namespace strata {

/// Removes the feature columns in which no entity has a finite value; returns their names.
template <class T>
std::vector<std::string> drop_all_nan_columns(EntityTable<T>& table) {
  std::vector<Index> keep;
  std::vector<std::string> dropped;
  for (Index c = 0; c < table.width(); ++c) {
    bool any = false;
    for (Index e = 0; e < table.size() && !any; ++e) any = std::isfinite(table.features()(c, e));
    if (any)
      keep.push_back(c);
    else
      dropped.push_back(table.columns()[static_cast<std::size_t>(c)]);
  }
  if (!dropped.empty()) table.select_columns(keep);
  return dropped;
}

/// Per-column mean imputation and standard scaling: `x -> (x - mean) / std`, missing values
/// becoming 0 (the mean). Columns that are constant over the fitted entities get scale 1. A
/// column with no finite value among them carries nothing the model could have learned from, so
/// it becomes 0 for every entity (scale infinite) rather than passing raw values through.
class StandardScaler {
 public:
  /// Fits the statistics on the entities `fit_on` of `table` (each entity counts once).
  template <class T>
  void fit(const EntityTable<T>& table, const std::vector<Index>& fit_on) {
    mean_.assign(static_cast<std::size_t>(table.width()), 0.0);
    scale_.assign(static_cast<std::size_t>(table.width()), 1.0);
    for (Index c = 0; c < table.width(); ++c) {
      double sum = 0.0, sum_sq = 0.0;
      Index n = 0;
      for (const Index e : fit_on) {
        const double v = static_cast<double>(table.features()(c, e));
        if (!std::isfinite(v)) continue;
        sum += v;
        ++n;
      }
      if (n == 0) {
        scale_[static_cast<std::size_t>(c)] = std::numeric_limits<double>::infinity();
        continue;
      }
      const double mean = sum / static_cast<double>(n);
      for (const Index e : fit_on) {
        const double v = static_cast<double>(table.features()(c, e));
        if (std::isfinite(v)) sum_sq += (v - mean) * (v - mean);
      }
      const double sd = std::sqrt(sum_sq / static_cast<double>(n));
      mean_[static_cast<std::size_t>(c)] = mean;
      scale_[static_cast<std::size_t>(c)] = sd > 1e-12 * std::max(1.0, std::abs(mean)) ? sd : 1.0;
    }
  }

  /// Imputes and scales every entity of `table` in place.
  template <class T>
  void transform(EntityTable<T>& table) const {
    if (static_cast<Index>(mean_.size()) != table.width())
      throw shape_error(detail::concat("StandardScaler: fitted on ", mean_.size(), " columns, the table has ", table.width()));
    auto& f = table.features();
    for (Index e = 0; e < f.cols(); ++e)
      for (Index c = 0; c < f.rows(); ++c) {
        const double v = static_cast<double>(f(c, e));
        const auto k = static_cast<std::size_t>(c);
        f(c, e) = std::isfinite(v) && std::isfinite(scale_[k]) ? static_cast<T>((v - mean_[k]) / scale_[k]) : T(0);
      }
  }

  /// Columns the scaler was fitted on.
  Index width() const { return static_cast<Index>(mean_.size()); }
  /// Per-column means (the imputed value).
  const std::vector<double>& mean() const { return mean_; }
  /// Per-column standard deviations (1 for constant columns, infinite for unfitted ones).
  const std::vector<double>& scale() const { return scale_; }

  /// Stores the statistics in `file` as tensors `<prefix>/mean` and `<prefix>/scale`.
  void save(state_file& file, const std::string& prefix) const {
    file.add(prefix + "/mean", as_matrix(mean_));
    file.add(prefix + "/scale", as_matrix(scale_));
  }

  /// Restores statistics written by `save`; throws io_error if they are missing or malformed.
  void load(const state_file& file, const std::string& prefix) {
    const state_file::tensor* m = file.find(prefix + "/mean");
    const state_file::tensor* s = file.find(prefix + "/scale");
    if (m == nullptr || s == nullptr || m->rows != s->rows || m->cols != 1 || s->cols != 1)
      throw io_error("checkpoint holds no feature scaler '" + prefix + "' (was it written by this program?)");
    matrix_d mm, ss;
    state_file::extract(*m, mm);
    state_file::extract(*s, ss);
    mean_.assign(mm.data(), mm.data() + mm.size());
    scale_.assign(ss.data(), ss.data() + ss.size());
  }

 private:
  static matrix_d as_matrix(const std::vector<double>& v) {
    matrix_d m(static_cast<Index>(v.size()), 1);
    for (std::size_t i = 0; i < v.size(); ++i) m(static_cast<Index>(i), 0) = v[i];
    return m;
  }

  std::vector<double> mean_, scale_;
};

}  // namespace strata
