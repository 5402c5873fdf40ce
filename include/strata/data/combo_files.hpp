#pragma once
/// \file combo_files.hpp
/// Reading and writing the files of the CANDLE Combo (NCI-ALMANAC) drug-response benchmark
/// (docs/design.md §2): the cell expression table (TSV, id column `Sample`), the drug descriptor table
/// (TSV, id column `NAME`) and the response file `ComboDrugGrowth_Nov2017.csv`, which is turned
/// into (cell, drug 1, drug 2, response) tuples the way the benchmark defines the target: growth
/// replicates averaged, the minimum over doses kept, divided by 100. A plain tuple format
/// (cell, drug1, drug2, response) is read and written too. The writers exist so generated data
/// can go through exactly the path real files take, and write files the readers reproduce
/// bit for bit. Every error names the file and, where there is one, the line and column.

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "../io/atomic_file.hpp"
#include "delimited.hpp"
#include "drug_response.hpp"
#include "entity_table.hpp"

namespace strata {

/// Prefix a cell table puts before the cell-line names a response file uses ("NCI60.A549").
inline constexpr std::string_view cell_id_prefix = "NCI60.";
/// Prefix a descriptor table puts before the numeric NSC ids a response file uses ("NSC.740").
inline constexpr std::string_view drug_id_prefix = "NSC.";

/// Index in `table` of the entity a response file calls `id`: the entity with exactly that id,
/// else the one called `fallback_prefix + id`, else `EntityTable<T>::npos`. Response files and
/// feature tables come from different sources and name the same entity differently (growth
/// files say "740" and "A549", descriptor and expression tables "NSC.740" and "NCI60.A549").
template <class T>
Index resolve_entity_id(const EntityTable<T>& table, const std::string& id, std::string_view fallback_prefix) {
  const Index exact = table.find(id);
  if (exact != EntityTable<T>::npos) return exact;
  return table.find(std::string(fallback_prefix) + id);
}

/// Choices for reading a response file.
struct response_read_options {
  /// Drop rows naming a cell or drug that no table holds (and count them in the report) instead
  /// of failing. Real response files cover more drugs than the descriptor tables, so a full run
  /// needs this; it is off by default so that a wrong table or id format is noticed.
  bool skip_unknown_ids = false;
};

/// What reading a response file found, filled in when the read succeeds.
struct response_read_report {
  /// Data rows in the file (blank lines and the header not counted).
  Index rows = 0;
  /// Rows not marked VALID=Y, ignored (ComboDrugGrowth files only).
  Index invalid_rows = 0;
  /// Valid rows dropped because a cell or drug id resolved to no table entry.
  Index unknown_rows = 0;
  /// Tuples returned.
  Index tuples = 0;
  /// Up to three of the dropped rows, as "line 5: cell 'FOO'", to show what did not match.
  std::vector<std::string> unknown_examples;
};

namespace detail {

/// True when `value` (finite or NaN) converts to a finite T or NaN, rounding to the nearest T as
/// a cast does. Casting a double beyond a float's range is undefined, so it is checked first.
template <class T>
bool fits_in(double value) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "Strata data files hold float or double");
  if constexpr (std::is_same_v<T, double>) {
    return true;
  } else {
    // Values from the largest float up to half a unit in the last place above it round to it.
    const double limit = std::ldexp(1.0, std::numeric_limits<T>::max_exponent) -
                         std::ldexp(1.0, std::numeric_limits<T>::max_exponent - std::numeric_limits<T>::digits - 1);
    return !(std::fabs(value) >= limit);  // NaN fits: it stays NaN
  }
}

/// Rows naming ids no table holds, collected while a response file is read so the error (or
/// report) can say how many there are and show a few.
class unknown_id_rows {
 public:
  /// Rows quoted in the message: enough to recognise the pattern, short enough to read.
  static constexpr std::size_t max_examples = 3;

  /// Records that the row on `line` names ids no table has (`what` says which).
  void add(Index line, const std::string& what) {
    ++count_;
    if (examples_.size() < max_examples) examples_.push_back(concat("line ", line, ": ", what));
  }

  /// Throws data_error naming the count and examples unless `options` allows skipping; records
  /// them in `report` otherwise.
  void settle(const std::string& path, const response_read_options& options, response_read_report& report) const {
    report.unknown_rows = count_;
    report.unknown_examples = examples_;
    if (count_ == 0 || options.skip_unknown_ids) return;
    std::string shown;
    for (std::size_t e = 0; e < examples_.size(); ++e) shown += (e ? "; " : "") + examples_[e];
    throw data_error(concat(path, ": ", count_, count_ == 1 ? " row names ids" : " rows name ids",
                            " that no table has, e.g. ", shown,
                            " (pass skip_unknown_ids / --skip-unknown-ids to drop them)"));
  }

 private:
  Index count_ = 0;
  std::vector<std::string> examples_;
};

/// Resolves a response row's ids into `tuple` (see `resolve_entity_id`). Returns "" when all
/// resolve, otherwise what did not, as "cell 'FOO', drug '123'".
template <class T>
std::string resolve_row_ids(const EntityTable<T>& cells, const EntityTable<T>& drugs, const std::string& cell,
                            const std::string& drug1, const std::string& drug2, response_tuple& tuple) {
  const Index c = resolve_entity_id(cells, cell, cell_id_prefix);
  const Index d1 = resolve_entity_id(drugs, drug1, drug_id_prefix);
  const Index d2 = drug2 == drug1 ? d1 : resolve_entity_id(drugs, drug2, drug_id_prefix);
  std::string unknown;
  const auto note = [&](const char* kind, const std::string& id) {
    unknown += concat(unknown.empty() ? "" : ", ", kind, " '", id, "'");
  };
  if (c == EntityTable<T>::npos) note("cell", cell);
  if (d1 == EntityTable<T>::npos) note("drug", drug1);
  if (d2 == EntityTable<T>::npos && drug2 != drug1) note("drug", drug2);
  if (unknown.empty()) {
    tuple.cell = static_cast<std::int32_t>(c);
    tuple.drug1 = static_cast<std::int32_t>(d1);
    tuple.drug2 = static_cast<std::int32_t>(d2);
  }
  return unknown;
}

/// Lower-case copy of `text` (ASCII), for column names matched without regard to case.
inline std::string lower_case(std::string_view text) {
  std::string lower(text);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lower;
}

/// Index of the first column whose name equals one of `names` (which are lower case), case
/// ignored, or -1 when there is none.
inline Index find_column(const DelimitedReader& reader, std::initializer_list<const char*> names) {
  for (const char* name : names)
    for (std::size_t c = 0; c < reader.header().size(); ++c)
      if (lower_case(reader.header()[c]) == name) return static_cast<Index>(c);
  return -1;
}

/// Index of the first column whose name equals one of `names` (which are lower case), case
/// ignored; throws data_error naming the first of `names`, the alternatives and the columns.
inline Index column_named(const DelimitedReader& reader, std::initializer_list<const char*> names) {
  const Index found = find_column(reader, names);
  if (found >= 0) return found;
  std::string alternatives;
  for (auto it = names.begin() + 1; it != names.end(); ++it)
    alternatives += concat(alternatives.empty() ? "" : ", ", "'", *it, "'");
  throw data_error(concat(reader.path(), ": no column '", *names.begin(), "' (",
                          alternatives.empty() ? "" : "nor " + alternatives + "; ", "case ignored; columns: ",
                          reader.column_list(), ")"));
}

/// Field `field` of `row`, spaces trimmed; data_error "PATH:LINE:COL: COLUMN is empty" if nothing is left.
inline std::string required_text(const DelimitedReader& reader, const delimited_row& row, Index field) {
  std::string text(trim_spaces(row.fields[static_cast<std::size_t>(field)]));
  if (text.empty())
    throw data_error(concat(reader.where(row, field), ": ", reader.header()[static_cast<std::size_t>(field)],
                            " is empty"));
  return text;
}

/// Field `field` of `row` as a finite number; a missing marker is a positioned data_error.
inline double required_number(const DelimitedReader& reader, const delimited_row& row, Index field) {
  const double value = reader.number(row, field);
  if (std::isnan(value))
    throw data_error(concat(reader.where(row, field), ": ", reader.header()[static_cast<std::size_t>(field)],
                            " is missing ('", trim_spaces(row.fields[static_cast<std::size_t>(field)]),
                            "') but every row needs one"));
  return value;
}

/// A response as stored (float), or a positioned data_error if `value` has no float equivalent.
inline float response_value(double value, const DelimitedReader& reader, const delimited_row& row, Index field) {
  if (!fits_in<float>(value))
    throw data_error(concat(reader.where(row, field), ": '", trim_spaces(row.fields[static_cast<std::size_t>(field)]),
                            "' gives a response beyond the range of float"));
  return static_cast<float>(value);
}

/// `value` with `significant_digits` digits in the shortest of fixed and scientific notation.
inline std::string format_number(double value, int significant_digits) {
  char text[48];
  std::snprintf(text, sizeof text, "%.*g", significant_digits, value);
  return text;
}

/// `data.validate()`, with the file about to be written named in its message.
template <class T>
void validate_for_writing(const drug_response_data<T>& data, const std::string& path) {
  try {
    data.validate();
  } catch (const data_error& e) {
    throw data_error(concat(path, ": cannot write: ", e.what()));
  }
}

/// The common end of both response readers: a file that yields no tuple is an error that says
/// why; otherwise the report is filled in and the tuples returned.
inline std::vector<response_tuple> finish_response_read(const std::string& path, std::vector<response_tuple> tuples,
                                                        response_read_report counts, response_read_report* report) {
  counts.tuples = static_cast<Index>(tuples.size());
  if (tuples.empty())
    throw data_error(detail::concat(path, ": no usable rows (", counts.rows, " rows read, ", counts.invalid_rows,
                                    " not VALID, ", counts.unknown_rows, " with unknown ids)"));
  if (report) *report = std::move(counts);
  return tuples;
}

/// A (cell, drug 1, drug 2) combination: the unit a ComboDrugGrowth file is summarised over.
struct combination_key {
  std::int32_t cell, drug1, drug2;
  bool operator==(const combination_key& other) const {
    return cell == other.cell && drug1 == other.drug1 && drug2 == other.drug2;
  }
};

/// Mixes the three indices so that combinations differing in any one spread over the buckets.
struct combination_key_hash {
  std::size_t operator()(const combination_key& key) const {
    std::uint64_t h = static_cast<std::uint32_t>(key.cell);
    h = h * 0x9E3779B97F4A7C15ull ^ static_cast<std::uint32_t>(key.drug1);
    h = h * 0x9E3779B97F4A7C15ull ^ static_cast<std::uint32_t>(key.drug2);
    return static_cast<std::size_t>(h ^ (h >> 29));
  }
};

}  // namespace detail

/// Reads a table of named entities: one row per entity, its id in column `id_column` (non-empty
/// and unique) and numbers in every other column (missing markers become NaN). The result is
/// `features x entities`: column e holds entity e (file row order), feature rows follow the
/// file's column order without the id column, and the column names are kept. data_error for an
/// empty or repeated id ("PATH:LINE:COL: id 'X' already appeared on line L"), a field that is not
/// a number, a ragged row, a missing id column or a table without rows; io_error if unreadable.
template <class T = float>
EntityTable<T> read_entity_table(const std::string& path, const std::string& id_column) {
  DelimitedReader reader(path);
  const Index id_field = reader.column(id_column);
  const Index fields = static_cast<Index>(reader.header().size());
  std::vector<std::string> columns;
  for (Index c = 0; c < fields; ++c)
    if (c != id_field) columns.push_back(reader.header()[static_cast<std::size_t>(c)]);

  std::vector<std::string> ids;
  std::vector<T> values;  // entity after entity: exactly the column-major layout of the result
  std::unordered_map<std::string, Index> line_of_id;
  delimited_row row;
  while (reader.next(row)) {
    std::string id(trim_spaces(row.fields[static_cast<std::size_t>(id_field)]));
    if (id.empty())
      throw data_error(detail::concat(reader.where(row, id_field), ": empty id in column '", id_column, "'"));
    const auto [seen, is_new] = line_of_id.emplace(id, row.line);
    if (!is_new)
      throw data_error(detail::concat(reader.where(row, id_field), ": id '", id, "' already appeared on line ",
                                      seen->second));
    ids.push_back(std::move(id));
    for (Index c = 0; c < fields; ++c) {
      if (c == id_field) continue;
      const double value = reader.number(row, c);
      if (!detail::fits_in<T>(value))
        throw data_error(detail::concat(reader.where(row, c), ": '",
                                        trim_spaces(row.fields[static_cast<std::size_t>(c)]),
                                        "' is beyond the range of float"));
      values.push_back(static_cast<T>(value));
    }
  }
  if (ids.empty())
    throw data_error(detail::concat(path, ": no rows after the header (an entity table needs at least one entity)"));
  const Index width = static_cast<Index>(columns.size()), count = static_cast<Index>(ids.size());
  host_matrix<T> features = Eigen::Map<const host_matrix<T>>(values.data(), width, count);
  return EntityTable<T>(std::move(ids), std::move(columns), std::move(features));
}

/// A CANDLE cell expression table: `read_entity_table` with id column "Sample".
template <class T = float>
EntityTable<T> read_cell_table(const std::string& path) {
  return read_entity_table<T>(path, "Sample");
}

/// A CANDLE drug descriptor table: `read_entity_table` with id column "NAME" (ids like "NSC.740").
template <class T = float>
EntityTable<T> read_drug_table(const std::string& path) {
  return read_entity_table<T>(path, "NAME");
}

/// Reads an NCI-ALMANAC growth file (`ComboDrugGrowth_Nov2017.csv` layout) into tuples. Uses the
/// columns CELLNAME, NSC1, CONC1, NSC2, CONC2, PERCENTGROWTH and VALID (others are ignored) and
/// only rows with VALID == "Y". An empty NSC2 is a single-agent row: drug 2 = drug 1, CONC2 = 0.
/// Per (cell, NSC1, NSC2, CONC1, CONC2) the PERCENTGROWTH replicates are averaged; per (cell,
/// NSC1, NSC2) the minimum over doses, divided by 100, is the response. Tuples come in the order
/// their (cell, NSC1, NSC2) first appears. Ids resolve as in `resolve_entity_id` (cells with
/// prefix "NCI60.", drugs with "NSC."); rows naming unknown ids fail the read, or are dropped
/// when `options.skip_unknown_ids`. `report`, if given, receives the counts. Errors: data_error
/// for a missing column, a ragged row, a non-numeric or missing dose or growth in a valid row
/// (positioned), or unknown ids; io_error if the file cannot be read.
template <class T>
std::vector<response_tuple> read_combo_response(const std::string& path, const EntityTable<T>& cells,
                                                const EntityTable<T>& drugs, const response_read_options& options = {},
                                                response_read_report* report = nullptr) {
  DelimitedReader reader(path);
  const Index cell_field = reader.column("CELLNAME"), nsc1_field = reader.column("NSC1"),
              conc1_field = reader.column("CONC1"), nsc2_field = reader.column("NSC2"),
              conc2_field = reader.column("CONC2"), growth_field = reader.column("PERCENTGROWTH"),
              valid_field = reader.column("VALID");

  // Growth replicates of one dose pair, summed in double so the mean does not depend on order
  // more than it must.
  struct dose_growth {
    double conc1, conc2, sum;
    Index count;
  };
  struct combination {
    response_tuple tuple;
    std::vector<dose_growth> doses;  // a handful per combination: a linear search is fastest
  };
  std::vector<combination> combinations;
  std::unordered_map<detail::combination_key, std::size_t, detail::combination_key_hash> combination_of;
  response_read_report counts;
  detail::unknown_id_rows unknown;

  delimited_row row;
  while (reader.next(row)) {
    ++counts.rows;
    if (trim_spaces(row.fields[static_cast<std::size_t>(valid_field)]) != "Y") {
      ++counts.invalid_rows;
      continue;
    }
    const std::string cell = detail::required_text(reader, row, cell_field);
    const std::string nsc1 = detail::required_text(reader, row, nsc1_field);
    const std::string nsc2_text(trim_spaces(row.fields[static_cast<std::size_t>(nsc2_field)]));
    const bool single_agent = nsc2_text.empty();
    const std::string& nsc2 = single_agent ? nsc1 : nsc2_text;
    const double conc1 = detail::required_number(reader, row, conc1_field);
    const double conc2 = single_agent ? 0.0 : detail::required_number(reader, row, conc2_field);
    const double growth = detail::required_number(reader, row, growth_field);
    detail::response_value(growth / 100.0, reader, row, growth_field);  // range check only

    response_tuple ids;
    const std::string missing = detail::resolve_row_ids(cells, drugs, cell, nsc1, nsc2, ids);
    if (!missing.empty()) {
      unknown.add(row.line, missing);
      continue;
    }
    const auto [found, is_new] =
        combination_of.emplace(detail::combination_key{ids.cell, ids.drug1, ids.drug2}, combinations.size());
    if (is_new) combinations.push_back({ids, {}});
    std::vector<dose_growth>& doses = combinations[found->second].doses;
    const auto dose = std::find_if(doses.begin(), doses.end(),
                                   [&](const dose_growth& d) { return d.conc1 == conc1 && d.conc2 == conc2; });
    // The first replicate starts the sum (rather than 0.0 + growth) so a growth of -0.0 stays -0.0.
    if (dose == doses.end())
      doses.push_back({conc1, conc2, growth, 1});
    else {
      dose->sum += growth;
      ++dose->count;
    }
  }
  unknown.settle(path, options, counts);

  std::vector<response_tuple> tuples;
  tuples.reserve(combinations.size());
  for (const combination& c : combinations) {
    double lowest = std::numeric_limits<double>::infinity();
    for (const dose_growth& d : c.doses) lowest = std::min(lowest, d.sum / static_cast<double>(d.count));
    response_tuple tuple = c.tuple;
    tuple.response = static_cast<float>(lowest / 100.0);
    tuples.push_back(tuple);
  }
  return detail::finish_response_read(path, std::move(tuples), std::move(counts), report);
}

/// Reads a plain tuple file in pieces, so a file of any length streams through a fixed amount
/// of memory: CSV or TSV with columns (names matched ignoring case) `cell` (or `cellname` or
/// `sample`), `drug1`, `drug2` and, unless optional, `response` (or `growth`); other columns are
/// ignored. One tuple per row, the response taken as written (0 when the file has none); an
/// empty drug2 means a single drug (drug 2 = drug 1). Ids resolve as in `read_combo_response`;
/// rows naming unknown ids are counted and, unless `options.skip_unknown_ids`, make `finish`
/// throw. A missing or non-numeric response is a positioned data_error.
template <class T>
class ResponseTupleReader {
 public:
  /// Whether a file without a response column is read (prediction) or refused (training).
  enum class responses { required, optional };

  ResponseTupleReader(const std::string& path, const EntityTable<T>& cells, const EntityTable<T>& drugs,
                      const response_read_options& options = {}, responses need = responses::required)
      : reader_(path), cells_(cells), drugs_(drugs), options_(options) {
    cell_field_ = detail::column_named(reader_, {"cell", "cellname", "sample"});
    drug1_field_ = detail::column_named(reader_, {"drug1"});
    drug2_field_ = detail::column_named(reader_, {"drug2"});
    response_field_ = need == responses::required ? detail::column_named(reader_, {"response", "growth"})
                                                  : detail::find_column(reader_, {"response", "growth"});
  }

  /// Whether the file has a response column.
  bool has_responses() const { return response_field_ >= 0; }

  /// Replaces `out` with the next (up to) `max` tuples; false when the file has no more.
  bool next(Index max, std::vector<response_tuple>& out) {
    out.clear();
    while (static_cast<Index>(out.size()) < max && reader_.next(row_)) {
      ++counts_.rows;
      const std::string cell = detail::required_text(reader_, row_, cell_field_);
      const std::string drug1 = detail::required_text(reader_, row_, drug1_field_);
      const std::string drug2_text(trim_spaces(row_.fields[static_cast<std::size_t>(drug2_field_)]));
      const std::string& drug2 = drug2_text.empty() ? drug1 : drug2_text;
      const float response = response_field_ < 0 ? 0.0f
                                                 : detail::response_value(detail::required_number(reader_, row_, response_field_),
                                                                          reader_, row_, response_field_);
      response_tuple tuple;
      const std::string missing = detail::resolve_row_ids(cells_, drugs_, cell, drug1, drug2, tuple);
      if (!missing.empty()) {
        unknown_.add(row_.line, missing);
        continue;
      }
      tuple.response = response;
      out.push_back(tuple);
      ++counts_.tuples;
    }
    return !out.empty();
  }

  /// After the last `next`: what was read. Throws data_error for rows with unknown ids (unless
  /// skipped) and for a file that gave no tuple.
  response_read_report finish() {
    unknown_.settle(reader_.path(), options_, counts_);
    if (counts_.tuples == 0)
      throw data_error(detail::concat(reader_.path(), ": no usable rows (", counts_.rows, " rows read, ",
                                      counts_.unknown_rows, " with unknown ids)"));
    return counts_;
  }

 private:
  DelimitedReader reader_;
  const EntityTable<T>& cells_;
  const EntityTable<T>& drugs_;
  response_read_options options_;
  Index cell_field_ = -1, drug1_field_ = -1, drug2_field_ = -1, response_field_ = -1;
  delimited_row row_;
  response_read_report counts_;
  detail::unknown_id_rows unknown_;
};

/// Reads a whole plain tuple file (see `ResponseTupleReader`; the response column is required).
template <class T>
std::vector<response_tuple> read_response_tuples(const std::string& path, const EntityTable<T>& cells,
                                                 const EntityTable<T>& drugs, const response_read_options& options = {},
                                                 response_read_report* report = nullptr) {
  ResponseTupleReader<T> reader(path, cells, drugs, options);
  std::vector<response_tuple> tuples, piece;
  while (reader.next(65536, piece)) tuples.insert(tuples.end(), piece.begin(), piece.end());
  const response_read_report counts = reader.finish();
  if (report) *report = counts;
  return tuples;
}

/// Writes `table` as a delimited text file that `read_entity_table(path, id_column)` reads back
/// exactly: a header (`id_column`, then the table's column names), then one row per entity, its
/// id first. Values carry `max_digits10` significant digits, enough to round-trip every T; NaN
/// is written "NA". Written to `path + ".tmp"` and renamed. data_error for an infinite value
/// (the text format holds finite numbers and NA only), io_error if the file cannot be written.
template <class T>
void write_entity_table(const std::string& path, const EntityTable<T>& table, const std::string& id_column,
                        char delimiter = '\t') {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "Strata data files hold float or double");
  detail::write_atomically(path, [&](std::ofstream& out) {
    std::string line = quote_field(id_column, delimiter);
    for (const std::string& name : table.columns()) (line += delimiter) += quote_field(name, delimiter);
    out << line << '\n';
    const host_matrix<T>& features = table.features();
    for (Index e = 0; e < table.size(); ++e) {
      line = quote_field(table.id(e), delimiter);
      for (Index f = 0; f < table.width(); ++f) {
        const T value = features(f, e);
        line += delimiter;
        if (std::isnan(value)) {
          line += "NA";
        } else if (std::isinf(value)) {
          throw data_error(detail::concat(path, ": entity '", table.id(e), "', column '",
                                          table.columns()[static_cast<std::size_t>(f)],
                                          "' is infinite; the text format holds finite numbers and NA only"));
        } else {
          line += detail::format_number(static_cast<double>(value), std::numeric_limits<T>::max_digits10);
        }
      }
      out << line << '\n';
    }
  });
}

/// Writes `data.tuples` as an NCI-ALMANAC growth CSV (`ComboDrugGrowth_Nov2017.csv` columns,
/// with COMBODRUGSEQ, CONCUNIT1/2 and PANEL as the extras a reader must ignore) that
/// `read_combo_response` with `data.cells` and `data.drugs` turns back into exactly
/// `data.tuples`. Each tuple becomes four rows exercising the reader's rules: two replicates at
/// the lowest dose with growth v = 100 * response (17 significant digits, so the mean and v / 100
/// reproduce the float exactly), one at a higher dose with v + 25 (not the minimum), and one
/// VALID=N row with growth -999 (ignored). Tuples with drug2 == drug1 are written as
/// single-agent rows (empty NSC2). Cells are written by table id, drugs by table id without an
/// "NSC." prefix, as in the real file. data_error if `data` is invalid, two tuples share a
/// (cell, drug1, drug2) (the format keeps one response per combination) or a drug id would read
/// back as another drug; io_error if the file cannot be written. Written atomically.
template <class T>
void write_combo_response(const std::string& path, const drug_response_data<T>& data) {
  detail::validate_for_writing(data, path);
  std::vector<std::string> written_drug(static_cast<std::size_t>(data.drugs.size()));
  for (Index d = 0; d < data.drugs.size(); ++d) {
    const std::string& id = data.drugs.id(d);
    std::string& written = written_drug[static_cast<std::size_t>(d)];
    written = id.compare(0, drug_id_prefix.size(), drug_id_prefix) == 0 ? id.substr(drug_id_prefix.size()) : id;
    const Index reads_back_as = resolve_entity_id(data.drugs, written, drug_id_prefix);
    if (written.empty() || reads_back_as != d) {
      const std::string read_back = reads_back_as == EntityTable<T>::npos
                                        ? std::string("no drug")
                                        : "drug '" + data.drugs.id(reads_back_as) + "'";
      throw data_error(detail::concat(path, ": drug '", id, "' would be written as '", written,
                                      "', which reads back as ", read_back));
    }
  }
  std::unordered_map<detail::combination_key, std::size_t, detail::combination_key_hash> first_tuple;
  for (std::size_t i = 0; i < data.tuples.size(); ++i) {
    const response_tuple& t = data.tuples[i];
    const auto [seen, is_new] = first_tuple.emplace(detail::combination_key{t.cell, t.drug1, t.drug2}, i);
    if (!is_new)
      throw data_error(detail::concat(path, ": tuples ", seen->second, " and ", i, " are both cell '",
                                      data.cells.id(t.cell), "' with drugs '", data.drugs.id(t.drug1), "' and '",
                                      data.drugs.id(t.drug2), "'; the format keeps one response per combination"));
  }

  detail::write_atomically(path, [&](std::ofstream& out) {
    out << "COMBODRUGSEQ,NSC1,CONC1,CONCUNIT1,NSC2,CONC2,CONCUNIT2,PERCENTGROWTH,VALID,PANEL,CELLNAME\n";
    Index sequence = 0;
    for (const response_tuple& t : data.tuples) {
      const bool single_agent = t.drug2 == t.drug1;
      const std::string cell = quote_field(data.cells.id(t.cell), ',');
      const std::string nsc1 = quote_field(written_drug[static_cast<std::size_t>(t.drug1)], ',');
      const std::string nsc2 = single_agent ? "" : quote_field(written_drug[static_cast<std::size_t>(t.drug2)], ',');
      const double growth = static_cast<double>(t.response) * 100.0;
      const auto write_row = [&](const char* conc, const std::string& percent_growth, const char* valid) {
        out << ++sequence << ',' << nsc1 << ',' << conc << ",M," << nsc2 << ',' << (single_agent ? "" : conc) << ','
            << (single_agent ? "" : "M") << ',' << percent_growth << ',' << valid << ",unspecified," << cell << '\n';
      };
      write_row("1e-08", detail::format_number(growth, 17), "Y");
      write_row("1e-08", "-999", "N");
      write_row("1e-06", detail::format_number(growth + 25.0, 17), "Y");
      write_row("1e-08", detail::format_number(growth, 17), "Y");
    }
  });
}

/// Writes `data.tuples` as a plain tuple CSV (`cell,drug1,drug2,response`, full table ids,
/// responses with 9 significant digits, enough for a float) that `read_response_tuples` reads
/// back exactly. data_error if `data` is invalid, io_error if the file cannot be written.
/// Written atomically.
template <class T>
void write_response_tuples(const std::string& path, const drug_response_data<T>& data) {
  detail::validate_for_writing(data, path);
  detail::write_atomically(path, [&](std::ofstream& out) {
    out << "cell,drug1,drug2,response\n";
    for (const response_tuple& t : data.tuples)
      out << quote_field(data.cells.id(t.cell), ',') << ',' << quote_field(data.drugs.id(t.drug1), ',') << ','
          << quote_field(data.drugs.id(t.drug2), ',') << ','
          << detail::format_number(static_cast<double>(t.response), std::numeric_limits<float>::max_digits10) << '\n';
  });
}

}  // namespace strata
