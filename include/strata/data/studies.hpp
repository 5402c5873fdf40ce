#pragma once
/// \file studies.hpp
/// Single-drug responses from several drug-screening studies over one pair of entity tables, as
/// CANDLE's Uno benchmark combines CCLE, CTRP, gCSI, GDSC and NCI-60 (docs/design.md, "Ensemble
/// transfer learning"): one cell table, one drug table, and (cell, drug, response) tuples that
/// each name the study that measured them. Studies measure overlapping cells and drugs with
/// different assays, so a model moves between them by transfer learning, not by pooling.

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "drug_response.hpp"

namespace strata {

/// Cells and drugs two studies both measured.
struct study_overlap {
  Index cells = 0, drugs = 0;
};

/// Responses of several studies over shared cell and drug tables.
template <class T = float>
struct multi_study_data {
  EntityTable<T> cells, drugs;
  std::vector<std::string> studies;    ///< study names; `study_of` indexes this
  std::vector<response_tuple> tuples;  ///< single drugs: drug2 == drug1
  std::vector<std::int32_t> study_of;  ///< the study of each tuple

  /// Index of study `name`; config_error naming the studies there are if none has that name.
  Index study_index(const std::string& name) const {
    const auto it = std::find(studies.begin(), studies.end(), name);
    if (it != studies.end()) return static_cast<Index>(it - studies.begin());
    std::string names;
    for (const auto& s : studies) names += (names.empty() ? "" : ", ") + s;
    throw config_error("no study '" + name + "' in the data (studies: " + (names.empty() ? "none" : names) + ")");
  }

  /// Study `name` alone, as single-drug data over the same tables (copied). Throws if the study
  /// has no tuples.
  drug_response_data<T> study(const std::string& name) const {
    const Index s = study_index(name);
    drug_response_data<T> out;
    out.cells = cells;
    out.drugs = drugs;
    out.drugs_per_tuple = 1;
    for (std::size_t i = 0; i < tuples.size(); ++i)
      if (study_of[i] == s) out.tuples.push_back(tuples[i]);
    if (out.tuples.empty()) throw data_error("study '" + name + "' has no responses");
    return out;
  }

  /// The cells and drugs studies `a` and `b` both measured.
  study_overlap overlap(const std::string& a, const std::string& b) const {
    const Index sa = study_index(a), sb = study_index(b);
    std::vector<std::uint8_t> cell_seen(static_cast<std::size_t>(cells.size()), 0),
        drug_seen(static_cast<std::size_t>(drugs.size()), 0);
    for (std::size_t i = 0; i < tuples.size(); ++i) {
      const std::uint8_t bit = study_of[i] == sa ? 1 : study_of[i] == sb ? 2 : 0;
      cell_seen[static_cast<std::size_t>(tuples[i].cell)] |= bit;
      drug_seen[static_cast<std::size_t>(tuples[i].drug1)] |= bit;
    }
    study_overlap o;
    o.cells = std::count(cell_seen.begin(), cell_seen.end(), std::uint8_t{3});
    o.drugs = std::count(drug_seen.begin(), drug_seen.end(), std::uint8_t{3});
    return o;
  }

  /// Throws data_error for a tuple outside the tables, two drugs in a tuple, a non-finite
  /// response or a study index out of range.
  void validate() const {
    if (study_of.size() != tuples.size())
      throw data_error(detail::concat("multi-study data: ", tuples.size(), " tuples but ", study_of.size(), " study labels"));
    detail::validate_tuples(tuples, cells.size(), drugs.size(), 1);
    for (std::size_t i = 0; i < study_of.size(); ++i)
      if (study_of[i] < 0 || study_of[i] >= static_cast<std::int32_t>(studies.size()))
        throw data_error(detail::concat("multi-study data: tuple ", i, " has study ", study_of[i], " of ", studies.size()));
  }
};

}  // namespace strata
