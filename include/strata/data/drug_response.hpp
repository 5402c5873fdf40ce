#pragma once
/// \file drug_response.hpp
/// Drug-response data as entity tables joined by index tuples (docs/design.md §2): a cell table, a
/// drug table and (cell, drug 1, drug 2, response) tuples. `DrugResponseDataset` is a view of some
/// of the tuples that implements the dataset concept: `gather` writes each sample's
/// `[cell | drug 1 | drug 2]` features into one column, so the full feature matrix never exists.
/// Single-drug data (one drug per measurement: the Uno studies, dose-response AUC) has
/// `drugs_per_tuple == 1`, every tuple's drug2 equal to its drug1, and samples `[cell | drug]`.

#include <cstdint>
#include <cstring>
#include <memory>
#include <numeric>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../core/hash.hpp"
#include "../core/tensor.hpp"
#include "entity_table.hpp"

namespace strata {

/// One measured response: indices into the cell and drug tables and the response value
/// (growth fraction for NCI-ALMANAC). Single-drug measurements use drug2 == drug1.
struct response_tuple {
  std::int32_t cell = 0, drug1 = 0, drug2 = 0;
  float response = 0.0f;
};

namespace detail {
/// The checks of `drug_response_data::validate` on tuples over tables of `cells` and `drugs`.
inline void validate_tuples(const std::vector<response_tuple>& tuples, Index cells, Index drugs, Index drugs_per_tuple) {
  if (drugs_per_tuple != 1 && drugs_per_tuple != 2)
    throw data_error(concat("drug-response data: drugs_per_tuple must be 1 or 2, got ", drugs_per_tuple));
  for (std::size_t i = 0; i < tuples.size(); ++i) {
    const response_tuple& t = tuples[i];
    if (t.cell < 0 || t.cell >= cells || t.drug1 < 0 || t.drug1 >= drugs || t.drug2 < 0 || t.drug2 >= drugs)
      throw data_error(concat("drug-response tuple ", i, " refers to cell ", t.cell, ", drugs ", t.drug1, "/", t.drug2,
                              " but the tables hold ", cells, " cells and ", drugs, " drugs"));
    if (!(t.response == t.response) || t.response - t.response != 0.0f)
      throw data_error(concat("drug-response tuple ", i, " has a non-finite response"));
    if (drugs_per_tuple == 1 && t.drug2 != t.drug1)
      throw data_error(concat("drug-response tuple ", i, " names two drugs (", t.drug1, ", ", t.drug2,
                              ") in single-drug data"));
  }
}
}  // namespace detail

/// Everything a drug-response experiment reads: two entity tables and the tuples joining them.
template <class T = float>
struct drug_response_data {
  EntityTable<T> cells, drugs;
  std::vector<response_tuple> tuples;
  /// 2: drug combinations (NCI-ALMANAC); 1: single drugs, each tuple's drug2 equal to its drug1.
  Index drugs_per_tuple = 2;

  /// Features per sample: the cell's, then each drug's.
  Index sample_width() const { return cells.width() + drugs_per_tuple * drugs.width(); }

  /// Throws data_error if a tuple names an entity outside the tables or has a non-finite
  /// response, or (single drugs) names two different drugs.
  void validate() const { detail::validate_tuples(tuples, cells.size(), drugs.size(), drugs_per_tuple); }
};

/// FNV-1a-64 of `data`'s tuples and feature tables, chained from `h`: the data part of a study's
/// signature (workflows/job_sweep.hpp), so that results of other data are never reused.
template <class T>
std::uint64_t hash_drug_response(const drug_response_data<T>& data, std::uint64_t h) {
  h = fnv1a64(data.tuples.data(), data.tuples.size() * sizeof(response_tuple), h);
  h = fnv1a64(data.cells.features().data(), static_cast<std::size_t>(data.cells.features().size()) * sizeof(T), h);
  return fnv1a64(data.drugs.features().data(), static_cast<std::size_t>(data.drugs.features().size()) * sizeof(T), h);
}

/// A set of tuples of a `drug_response_data` (shared, never copied), as a dataset with
/// `data.sample_width()` input features and one target.
template <class T = float>
class DrugResponseDataset {
 public:
  using scalar = T;

  DrugResponseDataset() = default;

  /// All tuples of `data`.
  explicit DrugResponseDataset(std::shared_ptr<const drug_response_data<T>> data)
      : data_(std::move(data)), rows_(data_->tuples.size()) {
    std::iota(rows_.begin(), rows_.end(), Index{0});
  }

  /// The tuples `rows` (indices into `data->tuples`) of `data`.
  DrugResponseDataset(std::shared_ptr<const drug_response_data<T>> data, std::vector<Index> rows)
      : data_(std::move(data)), rows_(std::move(rows)) {
    const Index n = static_cast<Index>(data_->tuples.size());
    for (const Index r : rows_)
      if (r < 0 || r >= n)
        throw data_error(detail::concat("DrugResponseDataset: tuple index ", r, " out of range [0, ", n, ")"));
  }

  /// Samples (tuples) in this view.
  Index size() const { return static_cast<Index>(rows_.size()); }
  /// Features per sample: cell, drug 1 and (combinations) drug 2 features side by side.
  Index input_width() const { return data_->sample_width(); }
  /// One response per sample.
  Index target_width() const { return 1; }

  /// The tuple behind sample `i`.
  const response_tuple& tuple(Index i) const { return data_->tuples[static_cast<std::size_t>(rows_[static_cast<std::size_t>(i)])]; }
  /// Indices into `data().tuples` of this view's samples, in sample order.
  const std::vector<Index>& rows() const { return rows_; }
  /// The tables and tuples this view reads from.
  const drug_response_data<T>& data() const { return *data_; }
  /// The same, shared (to build other views of the same data).
  const std::shared_ptr<const drug_response_data<T>>& shared_data() const { return data_; }

  /// A view of some of this view's samples (`samples` index this view, not the tuples).
  DrugResponseDataset subset(const std::vector<Index>& samples) const {
    std::vector<Index> rows;
    rows.reserve(samples.size());
    for (const Index s : samples) {
      if (s < 0 || s >= size())
        throw data_error(detail::concat("DrugResponseDataset::subset: sample ", s, " out of range [0, ", size(), ")"));
      rows.push_back(rows_[static_cast<std::size_t>(s)]);
    }
    return DrugResponseDataset(data_, std::move(rows));
  }

  /// Writes samples `indices[0..count)` as columns of `x` (`[cell | drug1 | drug2]`, or
  /// `[cell | drug]` for single drugs) and `y`.
  void gather(const Index* indices, Index count, host_matrix<T>& x, host_matrix<T>& y) const {
    const Index cw = data_->cells.width(), dw = data_->drugs.width();
    if (x.rows() != input_width() || x.cols() != count) x.resize(input_width(), count);
    if (y.rows() != 1 || y.cols() != count) y.resize(1, count);
    const T* cells = data_->cells.features().data();
    const T* drugs = data_->drugs.features().data();
    for (Index j = 0; j < count; ++j) {
      const Index i = indices[j];
      if (i < 0 || i >= size())
        throw data_error(detail::concat("DrugResponseDataset: sample index ", i, " out of range [0, ", size(), ")"));
      const response_tuple& t = tuple(i);
      T* column = x.data() + j * x.rows();
      std::memcpy(column, cells + static_cast<Index>(t.cell) * cw, sizeof(T) * static_cast<std::size_t>(cw));
      std::memcpy(column + cw, drugs + static_cast<Index>(t.drug1) * dw, sizeof(T) * static_cast<std::size_t>(dw));
      if (data_->drugs_per_tuple == 2)
        std::memcpy(column + cw + dw, drugs + static_cast<Index>(t.drug2) * dw, sizeof(T) * static_cast<std::size_t>(dw));
      y(0, j) = static_cast<T>(t.response);
    }
  }

 private:
  std::shared_ptr<const drug_response_data<T>> data_;
  std::vector<Index> rows_;
};

}  // namespace strata
