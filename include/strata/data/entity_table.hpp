#pragma once
/// \file entity_table.hpp
/// `EntityTable<T>`: named entities (cell lines, drugs, molecules) with one feature vector each,
/// stored `features x entities` so a minibatch gathers whole columns. Samples refer to entities
/// by index, which is how a 305,626-tuple drug-response set stays a few megabytes instead of an
/// 10.5 GB dense matrix (305,626 x 8,579 floats).

#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../core/tensor.hpp"

namespace strata {

/// Entities with unique string ids and one feature vector each (see the file comment).
template <class T = float>
class EntityTable {
 public:
  using scalar = T;
  /// Returned by `find` for an id the table does not hold.
  static constexpr Index npos = -1;

  EntityTable() = default;

  /// `features` is `columns.size() x ids.size()`. Ids must be unique.
  EntityTable(std::vector<std::string> ids, std::vector<std::string> columns, host_matrix<T> features)
      : ids_(std::move(ids)), columns_(std::move(columns)), features_(std::move(features)) {
    if (features_.cols() != static_cast<Index>(ids_.size()) || features_.rows() != static_cast<Index>(columns_.size()))
      throw shape_error(detail::concat("EntityTable: ", ids_.size(), " ids and ", columns_.size(), " columns but a ",
                                       shape_string(features_.rows(), features_.cols()), " feature matrix"));
    index_.reserve(ids_.size());
    for (std::size_t i = 0; i < ids_.size(); ++i)
      if (!index_.emplace(ids_[i], static_cast<Index>(i)).second)
        throw data_error(detail::concat("EntityTable: id '", ids_[i], "' appears twice"));
  }

  /// Number of entities.
  Index size() const { return static_cast<Index>(ids_.size()); }
  /// Features per entity.
  Index width() const { return features_.rows(); }

  /// Id of entity `entity`.
  const std::string& id(Index entity) const { return ids_[static_cast<std::size_t>(entity)]; }
  /// All ids, in entity order.
  const std::vector<std::string>& ids() const { return ids_; }
  /// Names of the feature columns (rows of `features()`).
  const std::vector<std::string>& columns() const { return columns_; }

  /// Index of the entity called `id`, or `npos`.
  Index find(const std::string& id) const {
    const auto it = index_.find(id);
    return it == index_.end() ? npos : it->second;
  }

  /// `width() x size()`: column e holds entity e's features.
  const host_matrix<T>& features() const { return features_; }
  host_matrix<T>& features() { return features_; }

  /// Keeps only the feature columns (rows of `features()`) listed in `keep`, in that order.
  void select_columns(const std::vector<Index>& keep) {
    host_matrix<T> kept(static_cast<Index>(keep.size()), features_.cols());
    std::vector<std::string> names;
    names.reserve(keep.size());
    for (std::size_t k = 0; k < keep.size(); ++k) {
      kept.row(static_cast<Index>(k)) = features_.row(keep[k]);
      names.push_back(columns_[static_cast<std::size_t>(keep[k])]);
    }
    features_ = std::move(kept);
    columns_ = std::move(names);
  }

 private:
  std::vector<std::string> ids_, columns_;
  host_matrix<T> features_;
  std::unordered_map<std::string, Index> index_;
};

}  // namespace strata
