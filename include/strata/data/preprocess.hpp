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
#include <unordered_map>
#include <unordered_set>
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
/// The scaler remembers the names of the columns it was fitted on, so a table read later (for
/// prediction) is matched by name, whatever its column order (`align`).
class StandardScaler {
 public:
  /// Fits the statistics on the entities `fit_on` of `table` (each entity counts once).
  template <class T>
  void fit(const EntityTable<T>& table, const std::vector<Index>& fit_on) {
    columns_ = table.columns();
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

  /// Reorders `table`'s columns into the order the scaler was fitted on, matching them by name,
  /// and drops the columns named in `ignored` (e.g. those that held no value in training). Throws
  /// data_error naming the columns the scaler needs that `table` lacks and those it has that the
  /// scaler does not know (`what` names the table in the message), and config_error when the
  /// scaler has no column names (statistics saved before names were kept).
  template <class T>
  void align(EntityTable<T>& table, const std::vector<std::string>& ignored = {}, const std::string& what = "table") const {
    if (columns_.size() != mean_.size())
      throw config_error(what + ": the saved feature scaling has no column names, so columns cannot be matched by name");
    std::unordered_map<std::string, Index> position;
    for (Index c = 0; c < table.width(); ++c) position.emplace(table.columns()[static_cast<std::size_t>(c)], c);
    std::vector<Index> keep;
    std::vector<std::string> missing, extra;
    keep.reserve(columns_.size());
    for (const std::string& name : columns_) {
      const auto it = position.find(name);
      if (it == position.end()) missing.push_back(name);
      else keep.push_back(it->second);
    }
    const std::unordered_set<std::string> known(columns_.begin(), columns_.end()), skipped(ignored.begin(), ignored.end());
    for (const std::string& name : table.columns())
      if (known.count(name) == 0 && skipped.count(name) == 0) extra.push_back(name);
    if (!missing.empty() || !extra.empty()) {
      std::string message = what + " does not have the columns the model was trained on:";
      if (!missing.empty()) message += detail::concat(" missing ", missing.size(), " (", name_list(missing), ")");
      if (!missing.empty() && !extra.empty()) message += ";";
      if (!extra.empty()) message += detail::concat(" unknown ", extra.size(), " (", name_list(extra), ")");
      throw data_error(message);
    }
    table.select_columns(keep);
  }

  /// Columns the scaler was fitted on.
  Index width() const { return static_cast<Index>(mean_.size()); }
  /// Their names, in order (empty for statistics saved without names).
  const std::vector<std::string>& columns() const { return columns_; }
  /// Per-column means (the imputed value).
  const std::vector<double>& mean() const { return mean_; }
  /// Per-column standard deviations (1 for constant columns, infinite for unfitted ones).
  const std::vector<double>& scale() const { return scale_; }

  /// Stores the statistics in `file` as tensors `<prefix>/mean` and `<prefix>/scale`, and the
  /// column names as metadata `<prefix>/columns` (one per line).
  void save(state_file& file, const std::string& prefix) const {
    file.add(prefix + "/mean", as_matrix(mean_));
    file.add(prefix + "/scale", as_matrix(scale_));
    if (columns_.size() != mean_.size()) return;
    file.meta[prefix + "/columns"] = detail::join_lines(columns_, "StandardScaler: column names");
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
    columns_.clear();
    const auto names = file.meta.find(prefix + "/columns");
    if (names == file.meta.end()) return;  // written before column names were kept
    columns_ = detail::split_lines(names->second);
    if (columns_.size() != mean_.size())
      throw io_error(detail::concat("feature scaler '", prefix, "' names ", columns_.size(), " columns for ",
                                    mean_.size(), " statistics"));
  }

 private:
  /// The first few of `names`, quoted, for an error message.
  static std::string name_list(const std::vector<std::string>& names) {
    constexpr std::size_t shown = 5;
    std::string out;
    for (std::size_t i = 0; i < std::min(shown, names.size()); ++i) out += (i ? ", '" : "'") + names[i] + "'";
    if (names.size() > shown) out += detail::concat(", and ", names.size() - shown, " more");
    return out;
  }

  static matrix_d as_matrix(const std::vector<double>& v) {
    matrix_d m(static_cast<Index>(v.size()), 1);
    for (std::size_t i = 0; i < v.size(); ++i) m(static_cast<Index>(i), 0) = v[i];
    return m;
  }

  std::vector<double> mean_, scale_;
  std::vector<std::string> columns_;
};

}  // namespace strata
