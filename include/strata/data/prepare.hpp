#pragma once
/// \file prepare.hpp
/// From raw drug-response data to the training and validation datasets, the way CANDLE prepares
/// Combo data: drop all-missing columns, fit imputation and scaling on the entities that the
/// training tuples use (never on validation entities), apply them to both tables. One function,
/// so the example programs, the tests and the parallel trainers prepare data identically.

#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "drug_response.hpp"
#include "preprocess.hpp"
#include "split.hpp"

namespace strata {

/// The prepared data: two views sharing one set of scaled tables, and what preparation did.
template <class T = float>
struct prepared_drug_response {
  DrugResponseDataset<T> train, validation;                           ///< views of the scaled tables
  StandardScaler cell_scaler, drug_scaler;                             ///< the statistics applied (save them with the model)
  std::vector<std::string> dropped_cell_columns, dropped_drug_columns;  ///< all-missing columns removed
};

/// Cells and drugs (ascending) that the tuples `rows` use.
template <class T>
std::pair<std::vector<Index>, std::vector<Index>> entities_used(const drug_response_data<T>& data,
                                                                const std::vector<Index>& rows) {
  std::set<Index> cells, drugs;
  for (const Index r : rows) {
    const response_tuple& t = data.tuples[static_cast<std::size_t>(r)];
    cells.insert(t.cell);
    drugs.insert(t.drug1);
    drugs.insert(t.drug2);
  }
  return {{cells.begin(), cells.end()}, {drugs.begin(), drugs.end()}};
}

/// Prepares `data` for training on `parts.train` and validating on `parts.validation`. The
/// scalers are fitted on the training entities unless given (e.g. restored from a checkpoint).
template <class T>
prepared_drug_response<T> prepare_drug_response(drug_response_data<T> data, const split& parts,
                                                const StandardScaler* cell_scaler = nullptr,
                                                const StandardScaler* drug_scaler = nullptr) {
  prepared_drug_response<T> out;
  out.dropped_cell_columns = drop_all_nan_columns(data.cells);
  out.dropped_drug_columns = drop_all_nan_columns(data.drugs);
  const auto [cells, drugs] = entities_used(data, parts.train);
  if (cell_scaler != nullptr) out.cell_scaler = *cell_scaler;
  else out.cell_scaler.fit(data.cells, cells);
  if (drug_scaler != nullptr) out.drug_scaler = *drug_scaler;
  else out.drug_scaler.fit(data.drugs, drugs);
  out.cell_scaler.transform(data.cells);
  out.drug_scaler.transform(data.drugs);
  const auto shared = std::make_shared<const drug_response_data<T>>(std::move(data));
  out.train = DrugResponseDataset<T>(shared, parts.train);
  out.validation = DrugResponseDataset<T>(shared, parts.validation);
  return out;
}

}  // namespace strata
