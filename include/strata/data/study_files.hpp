#pragma once
/// \file study_files.hpp
/// The files of multi-study single-drug data in CANDLE Uno's layout: a cell table (id column
/// `Sample`) and a drug table (id column `NAME`), as Combo's (combo_files.hpp), and a response
/// table with one row per measurement, `SOURCE CELL DRUG AUC` (tab-separated, as Uno's
/// `combined_single_response_agg`; other columns are ignored, so the real file reads as is).
/// The study column may be called SOURCE or STUDY, the cell column CELL or SAMPLE, the drug
/// column DRUG or DRUG1, the response column AUC or RESPONSE (case ignored). Rows whose response
/// is missing (failed curve fits, "NA") are skipped and counted; every other fault is an error
/// naming the file, line and column.

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <unordered_map>
#include <utility>

#include "combo_files.hpp"
#include "studies.hpp"

namespace strata {

/// Reads a multi-study response file over the tables `cells` and `drugs` (which the result
/// takes). Studies are numbered in the order they first appear. Ids resolve as in
/// `resolve_entity_id`; rows naming unknown ids fail the read unless `options.skip_unknown_ids`.
/// `report` receives the counts (`invalid_rows`: rows without a response). data_error for a
/// missing column, an empty study, cell or drug field, a malformed response, unknown ids or a
/// file with no usable row; io_error if it cannot be read.
template <class T>
multi_study_data<T> read_study_responses(const std::string& path, EntityTable<T> cells, EntityTable<T> drugs,
                                         const response_read_options& options = {},
                                         response_read_report* report = nullptr) {
  DelimitedReader reader(path);
  const Index study_field = detail::column_named(reader, {"source", "study"});
  const Index cell_field = detail::column_named(reader, {"cell", "sample"});
  const Index drug_field = detail::column_named(reader, {"drug", "drug1"});
  const Index response_field = detail::column_named(reader, {"auc", "response"});
  multi_study_data<T> out;
  out.cells = std::move(cells);
  out.drugs = std::move(drugs);
  std::unordered_map<std::string, std::int32_t> study_number;
  response_read_report counts;
  detail::unknown_id_rows unknown;
  delimited_row row;
  while (reader.next(row)) {
    ++counts.rows;
    const double value = reader.number(row, response_field);
    if (std::isnan(value)) {
      ++counts.invalid_rows;
      continue;
    }
    const float response = detail::response_value(value, reader, row, response_field);
    const std::string study = detail::required_text(reader, row, study_field);
    const std::string cell = detail::required_text(reader, row, cell_field);
    const std::string drug = detail::required_text(reader, row, drug_field);
    response_tuple tuple;
    const std::string missing = detail::resolve_row_ids(out.cells, out.drugs, cell, drug, drug, tuple);
    if (!missing.empty()) {
      unknown.add(row.line, missing);
      continue;
    }
    tuple.response = response;
    const auto [it, is_new] = study_number.emplace(study, static_cast<std::int32_t>(out.studies.size()));
    if (is_new) out.studies.push_back(study);
    out.tuples.push_back(tuple);
    out.study_of.push_back(it->second);
  }
  unknown.settle(path, options, counts);
  out.tuples = detail::finish_response_read(path, std::move(out.tuples), counts, report);
  return out;
}

/// Writes `data`'s responses as a tab-separated `SOURCE CELL DRUG AUC` file that
/// `read_study_responses` reads back exactly (responses with 9 significant digits, enough for a
/// float). data_error if `data` is invalid; io_error if the file cannot be written. Atomic.
template <class T>
void write_study_responses(const std::string& path, const multi_study_data<T>& data) {
  try {
    data.validate();
  } catch (const data_error& e) {
    throw data_error(detail::concat(path, ": cannot write: ", e.what()));
  }
  detail::write_atomically(path, [&](std::ofstream& out) {
    out << "SOURCE\tCELL\tDRUG\tAUC\n";
    for (std::size_t i = 0; i < data.tuples.size(); ++i) {
      const response_tuple& t = data.tuples[i];
      out << quote_field(data.studies[static_cast<std::size_t>(data.study_of[i])], '\t') << '\t'
          << quote_field(data.cells.id(t.cell), '\t') << '\t' << quote_field(data.drugs.id(t.drug1), '\t') << '\t'
          << detail::format_number(static_cast<double>(t.response), std::numeric_limits<float>::max_digits10) << '\n';
    }
  });
}

/// Writes the three files of `data` into `directory` (created if needed) under Uno's names:
/// `cell_features.tsv`, `drug_features.tsv` and `combined_single_response_agg`.
template <class T>
void write_study_files(const std::string& directory, const multi_study_data<T>& data) {
  std::filesystem::create_directories(directory);
  write_entity_table(directory + "/cell_features.tsv", data.cells, "Sample");
  write_entity_table(directory + "/drug_features.tsv", data.drugs, "NAME");
  write_study_responses(directory + "/combined_single_response_agg", data);
}

/// Reads the three files `write_study_files` writes from `directory`.
template <class T = float>
multi_study_data<T> read_study_files(const std::string& directory, const response_read_options& options = {},
                                     response_read_report* report = nullptr) {
  return read_study_responses<T>(directory + "/combined_single_response_agg", read_cell_table<T>(directory + "/cell_features.tsv"),
                                 read_drug_table<T>(directory + "/drug_features.tsv"), options, report);
}

}  // namespace strata
