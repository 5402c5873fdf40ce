#pragma once
/// \file combo_model_file.hpp
/// A trained drug-response (Combo) model as one file for inference: the weights (a model file,
/// train/model_file.hpp), the architecture's sizes, the feature scalers with the names of the
/// columns they were fitted on, the columns dropped before fitting, and a description of the
/// data it was trained on. Everything a later program needs to predict new (cell, drug, drug)
/// tuples from raw cell and drug tables: `load_combo_model` rebuilds the model, and
/// `prepare_tables` scales tables read later the way training did, matching columns by name.

#include <cstdint>
#include <cmath>
#include <iomanip>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../core/parse.hpp"
#include "../data/drug_response.hpp"
#include "../data/preprocess.hpp"
#include "../graph/architecture.hpp"
#include "../graph/model.hpp"
#include "../inference/calibration.hpp"
#include "../train/model_file.hpp"
#include "combo.hpp"

namespace strata {

/// What a Combo model file holds besides the weights.
struct combo_model_info {
  combo_options shape;                 ///< feature widths, hidden width, dropout rate
  std::uint64_t seed = 0;              ///< the model's seed (Monte-Carlo dropout masks derive from it)
  StandardScaler cell_scaler, drug_scaler;                              ///< fitted on the training entities
  std::vector<std::string> dropped_cell_columns, dropped_drug_columns;  ///< held no value in training
  std::string data;                    ///< how the training data and run were described
  dense_calibration calibration;       ///< int8 inference's input ranges (empty: none measured)
  Index calibration_samples = 0;       ///< the samples they were measured on
};

/// The `kind` entry of a Combo model file.
inline const std::string combo_model_kind = "drug_response/combo";

/// Writes `model` and `info` to `path` (atomically; see train/model_file.hpp).
template <class B>
void save_combo_model(Model<Combo, B>& model, const combo_model_info& info, const std::string& path) {
  state_file contents;
  contents.meta["kind"] = combo_model_kind;
  contents.meta["combo/cell_width"] = std::to_string(info.shape.cell_width);
  contents.meta["combo/drug_width"] = std::to_string(info.shape.drug_width);
  contents.meta["combo/width"] = std::to_string(info.shape.width);
  contents.meta["combo/dropout"] = detail::concat(std::setprecision(17), info.shape.dropout);
  contents.meta["seed"] = std::to_string(info.seed);
  contents.meta["data"] = info.data;
  contents.meta["dropped/cell"] = detail::join_lines(info.dropped_cell_columns, "save_combo_model: dropped cell columns");
  contents.meta["dropped/drug"] = detail::join_lines(info.dropped_drug_columns, "save_combo_model: dropped drug columns");
  info.cell_scaler.save(contents, "scaler/cell");
  info.drug_scaler.save(contents, "scaler/drug");
  if (!info.calibration.empty()) store_calibration(contents, info.calibration, info.calibration_samples);
  save_model_file(model, path, std::move(contents));
}

/// A Combo model read back from its file, built and loaded, with what the file says about it.
template <class B = EigenBackend<float>>
struct loaded_combo_model {
  Model<Combo, B> model;
  combo_model_info info;
};

/// Reads a Combo model file: rebuilds the model with the saved sizes and seed and loads its
/// weights. io_error when the file is not a Combo model file, its entries are malformed or
/// disagree with each other, or its scalers have no column names (they cannot be matched).
template <class B = EigenBackend<float>>
loaded_combo_model<B> load_combo_model(const std::string& path) {
  const state_file file = state_file::read(path);
  const auto fail = [&](const std::string& what) { return io_error("model file '" + path + "' " + what); };
  const auto entry = [&](const std::string& key) -> const std::string& {
    const auto it = file.meta.find(key);
    if (it == file.meta.end())
      throw fail("has no '" + key + "' entry" +
                 (file.meta.count("kind") ? std::string() : ": it is not a model file (a training checkpoint?)"));
    return it->second;
  };
  if (entry("kind") != combo_model_kind) throw fail("holds a " + entry("kind") + " model, not a " + combo_model_kind + " model");
  const auto count = [&](const std::string& key) {
    std::uint64_t v = 0;
    if (!detail::parse_unsigned(entry(key), std::uint64_t{1} << 31, v) || v == 0)
      throw fail("has a malformed '" + key + "' = '" + entry(key) + "'");
    return static_cast<Index>(v);
  };
  combo_model_info info;
  info.shape.cell_width = count("combo/cell_width");
  info.shape.drug_width = count("combo/drug_width");
  info.shape.width = count("combo/width");
  if (!detail::parse_finite(entry("combo/dropout"), info.shape.dropout) || !(info.shape.dropout >= 0 && info.shape.dropout < 1))
    throw fail("has a malformed 'combo/dropout' = '" + entry("combo/dropout") + "'");
  if (!detail::parse_unsigned(entry("seed"), ~std::uint64_t{0}, info.seed))
    throw fail("has a malformed 'seed' = '" + entry("seed") + "'");
  info.data = entry("data");
  info.dropped_cell_columns = detail::split_lines(entry("dropped/cell"));
  info.dropped_drug_columns = detail::split_lines(entry("dropped/drug"));
  info.cell_scaler.load(file, "scaler/cell");
  info.drug_scaler.load(file, "scaler/drug");
  info.calibration = stored_calibration(file, path);
  if (!info.calibration.empty()) {
    std::uint64_t samples = 0;
    if (!detail::parse_unsigned(entry("calibration_samples"), std::uint64_t{1} << 62, samples))
      throw fail("has a malformed 'calibration_samples' = '" + entry("calibration_samples") + "'");
    info.calibration_samples = static_cast<Index>(samples);
  }
  if (info.cell_scaler.width() != info.shape.cell_width || info.drug_scaler.width() != info.shape.drug_width)
    throw fail(detail::concat("has feature scalers for ", info.cell_scaler.width(), " cell and ", info.drug_scaler.width(),
                              " drug columns but a model for ", info.shape.cell_width, " and ", info.shape.drug_width));
  if (info.cell_scaler.columns().empty() || info.drug_scaler.columns().empty())
    throw fail("has feature scalers without column names");
  // The weights of a model of these sizes must all be in the file: checked before the model is
  // built, so sizes a damaged file makes up never allocate more than the file holds.
  const double c = static_cast<double>(info.shape.cell_width), d = static_cast<double>(info.shape.drug_width),
               w = static_cast<double>(info.shape.width);
  const double needed = (c + d) * w + 9 * w * w + 10 * w + 1;  // two encoders, the stack, the output
  double held = 0.0;
  for (const auto& t : file.tensors) held += static_cast<double>(t.rows) * static_cast<double>(t.cols);
  if (needed > held)
    throw fail(detail::concat("describes a model of ", needed, " weights but holds ", held, " values"));
  loaded_combo_model<B> loaded{Model<Combo, B>(make_combo(info.shape)), std::move(info)};
  loaded.model.build(loaded.info.shape.cell_width + 2 * loaded.info.shape.drug_width, loaded.info.seed);
  apply_model_file(loaded.model, file, path, combo_model_kind);
  return loaded;
}

/// How a Combo model's inputs are made from raw tables, as a JSON object for programs outside
/// Strata (the "preprocessing" member of `drug_response export`'s architecture JSON):
///   {"inputs": ["cell", "drug1", "drug2"],
///    "cell": {"id_column": "Sample", "columns": [...], "dropped": [...], "mean": [...], "scale": [...]},
///    "drug": {"id_column": "NAME", ...}}
/// A feature is `(value - mean) / scale`, and 0 where the value is missing or the scale `null`
/// (a column without values in training). The input is [cell | drug 1 | drug 2].
inline std::string combo_preprocessing_json(const combo_model_info& info) {
  const auto strings = [](const std::vector<std::string>& v) {
    std::string out = "[";
    for (std::size_t k = 0; k < v.size(); ++k) out += (k ? ", " : "") + detail::json_quoted(v[k]);
    return out + "]";
  };
  const auto numbers = [](const std::vector<double>& v) {
    std::ostringstream out;
    out << std::setprecision(17) << "[";
    for (std::size_t k = 0; k < v.size(); ++k) {
      if (k) out << ", ";
      if (std::isfinite(v[k])) out << v[k];
      else out << "null";
    }
    out << "]";
    return out.str();
  };
  const auto table = [&](const char* id_column, const StandardScaler& scaler, const std::vector<std::string>& dropped) {
    return detail::concat("{\"id_column\": \"", id_column, "\", \"columns\": ", strings(scaler.columns()),
                          ",\n   \"dropped\": ", strings(dropped), ",\n   \"mean\": ", numbers(scaler.mean()),
                          ",\n   \"scale\": ", numbers(scaler.scale()), "}");
  };
  return detail::concat("{\"inputs\": [\"cell\", \"drug1\", \"drug2\"],\n  \"cell\": ",
                        table("Sample", info.cell_scaler, info.dropped_cell_columns), ",\n  \"drug\": ",
                        table("NAME", info.drug_scaler, info.dropped_drug_columns), "}");
}

/// Scales raw cell and drug tables (as read from files) for a model described by `info`: columns
/// dropped in training are removed, the others put in training order by name and scaled with the
/// saved statistics. data_error naming the columns when a table lacks some or has unknown ones.
template <class T>
void prepare_tables(const combo_model_info& info, EntityTable<T>& cells, EntityTable<T>& drugs) {
  info.cell_scaler.align(cells, info.dropped_cell_columns, "the cell table");
  info.drug_scaler.align(drugs, info.dropped_drug_columns, "the drug table");
  info.cell_scaler.transform(cells);
  info.drug_scaler.transform(drugs);
}

}  // namespace strata
