#pragma once
/// \file molecule_files.hpp
/// Molecules from files, featurised for a docking surrogate:
///   .smi        one molecule per line: SMILES, whitespace, id (the id may be missing)
///   .csv/.tsv   a header, a SMILES column (`smiles` in any case, or named), optional id and
///               score columns, as the group's ml.<target>.csv frames
///   feature CSV precomputed descriptors or fingerprints: an id column, a score column, and every
///               other column a feature (read_feature_table)
/// A SMILES RDKit cannot read, or a row that is malformed (a missing or non-numeric score), is
/// skipped and reported with its line and the reason; `strict` stops at the first one instead.
/// The result is a `MatrixDataset`-ready table: features x molecules, one label per molecule.

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "../chem/morgan.hpp"
#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "dataset.hpp"
#include "delimited.hpp"

namespace strata {

/// How to read a molecule file.
struct molecule_read_options {
  std::string smiles_column;  ///< CSV: the SMILES column; empty: the one named "smiles" (any case)
  std::string id_column;      ///< CSV: the id column; empty: TITLE, id, name or title if present
  std::string score_column;   ///< CSV: the label column; empty: no labels
  /// Train on reg = max(-score, 0) (docking scores: more negative binds better), as the paper.
  bool docking_score = false;
  bool strict = false;        ///< stop at the first bad row instead of skipping it
};

/// A row that was skipped: where, what, why.
struct rejected_molecule {
  Index line = 0;  ///< 0 when the reason carries its own file:line:column
  std::string text;
  std::string reason;
};

/// Molecules read from a file.
struct molecule_table {
  std::vector<std::string> ids;
  host_matrix<float> features;   ///< width x molecules
  host_matrix<float> labels;     ///< 1 x molecules (0 x molecules without a score column)
  std::vector<rejected_molecule> rejected;
  Index rows = 0;                ///< data rows seen (a reused chunk may keep spare feature columns)

  Index size() const { return static_cast<Index>(ids.size()); }
  MatrixDataset<float> dataset() const { return MatrixDataset<float>(features.leftCols(size()), labels); }
  /// The molecules as a dataset without copying (valid while the table is unchanged). Labels are
  /// zero when the table has none.
  struct view {
    const molecule_table* table;
    using scalar = float;
    Index size() const { return table->size(); }
    Index input_width() const { return table->features.rows(); }
    Index target_width() const { return 1; }
    void gather(const Index* indices, Index count, host_matrix<float>& x, host_matrix<float>& y) const {
      x.resize(input_width(), count);
      y.resize(1, count);
      for (Index j = 0; j < count; ++j) {
        x.col(j) = table->features.col(indices[j]);
        y(0, j) = table->labels.rows() > 0 ? table->labels(0, indices[j]) : 0.0f;
      }
    }
  };
  view as_dataset() const { return view{this}; }
  /// "4 of 5,000 rows skipped (line 17: invalid SMILES 'C1CC'; ...)" for messages.
  std::string rejection_summary(std::size_t examples = 3) const {
    std::ostringstream s;
    s << rejected.size() << " of " << rows << " rows skipped";
    if (!rejected.empty()) {
      s << " (";
      for (std::size_t k = 0; k < rejected.size() && k < examples; ++k)
        s << (k ? "; " : "") << (rejected[k].line > 0 ? detail::concat("line ", rejected[k].line, ": ") : std::string())
          << rejected[k].reason;
      if (rejected.size() > examples) s << "; ...";
      s << ")";
    }
    return s.str();
  }
};

namespace detail {

inline std::string lowercase(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

/// The column named `wanted`, or when empty the first whose lowercase name is in `defaults`; -1.
inline Index pick_column(const DelimitedReader& reader, const std::string& wanted, std::initializer_list<const char*> defaults) {
  if (!wanted.empty()) return reader.column(wanted);
  for (const char* name : defaults)
    for (std::size_t c = 0; c < reader.header().size(); ++c)
      if (lowercase(reader.header()[c]) == name) return static_cast<Index>(c);
  return -1;
}

/// Accumulates molecules column by column (growing the feature matrix geometrically).
class molecule_builder {
 public:
  // features_ starts width x 0, so a file without molecules still yields width x 0 features.
  molecule_builder(Index width, bool labelled) : width_(width), labelled_(labelled), features_(width, 0) {}
  float* next_column() {
    if (count_ == capacity_) {
      // The first block holds up to 1,024 molecules but at most 16 MiB, so a table of very many
      // columns never allocates much more than the rows actually read.
      capacity_ = capacity_ == 0 ? std::clamp<Index>((Index{1} << 22) / std::max<Index>(width_, 1), 1, 1024) : 2 * capacity_;
      features_.conservativeResize(width_, capacity_);
    }
    return features_.data() + count_ * width_;
  }
  void commit(std::string id, float label) {
    ids_.push_back(std::move(id));
    labels_.push_back(label);
    ++count_;
  }
  void finish(molecule_table& t) {
    t.ids = std::move(ids_);
    t.features = features_.leftCols(count_);
    t.labels.resize(labelled_ ? 1 : 0, count_);
    if (labelled_) for (Index j = 0; j < count_; ++j) t.labels(0, j) = labels_[static_cast<std::size_t>(j)];
  }

 private:
  Index width_;
  bool labelled_;
  Index count_ = 0, capacity_ = 0;
  host_matrix<float> features_;
  std::vector<std::string> ids_;
  std::vector<float> labels_;
};

/// Records a bad row, or throws it in strict mode.
inline void reject(molecule_table& t, const std::string& path, Index line, std::string text, std::string reason, bool strict) {
  if (strict)
    throw data_error(line > 0 ? detail::concat(path, ":", line, ": ", reason, " (strict mode stops at the first bad row)")
                              : reason + " (strict mode stops at the first bad row)");
  t.rejected.push_back({line, std::move(text), std::move(reason)});
}

/// The label of a score field: the score itself, or reg = max(-score, 0).
inline float label_of(double score, bool docking) { return static_cast<float>(docking ? std::max(-score, 0.0) : score); }

}  // namespace detail

/// Reads a .smi file or a CSV/TSV with a SMILES column in chunks: `next` featurises up to a
/// given number of rows, on all threads, into a table of its own, so a library of any size is
/// screened in memory that does not grow with it. Rows keep their order.
class SmilesReader {
 public:
  SmilesReader(std::string path, const MorganFeaturizer& featurizer, molecule_read_options options = {})
      : path_(std::move(path)), featurizer_(&featurizer), o_(std::move(options)) {
    csv_ = path_.size() >= 4 && (detail::lowercase(path_.substr(path_.size() - 4)) == ".csv" ||
                                 detail::lowercase(path_.substr(path_.size() - 4)) == ".tsv");
    if (!csv_) {
      if (!o_.score_column.empty())
        throw config_error("'" + path_ + "' is a .smi file (SMILES and id): it has no score column '" + o_.score_column +
                           "'; give labels in a CSV with a SMILES column");
      smi_.open(path_);
      if (!smi_) throw io_error("cannot open '" + path_ + "'");
      return;
    }
    csv_reader_ = std::make_unique<DelimitedReader>(path_);
    smiles_column_ = detail::pick_column(*csv_reader_, o_.smiles_column, {"smiles"});
    if (smiles_column_ < 0)
      throw data_error(path_ + ": no SMILES column (columns: " + csv_reader_->column_list() + "); name it with the SMILES-column option");
    id_column_ = detail::pick_column(*csv_reader_, o_.id_column, {"title", "id", "name"});
    score_column_ = o_.score_column.empty() ? -1 : csv_reader_->column(o_.score_column);
  }

  const std::string& path() const { return path_; }
  bool labelled() const { return score_column_ >= 0; }

  /// Replaces `chunk` with the next molecules of at most `max_rows` data rows (rows that are
  /// skipped count); false once the file has no rows left.
  bool next(Index max_rows, molecule_table& chunk) {
    pending_.clear();
    for (pending p; static_cast<Index>(pending_.size()) < max_rows && read_row(p);) pending_.push_back(std::move(p));
    const auto n = static_cast<Index>(pending_.size());
    const Index width = featurizer_->width();
    // The chunk's storage is reused from call to call (fresh pages for every chunk cost more
    // than the featurisation of small molecules).
    chunk.ids.clear();
    chunk.rejected.clear();
    chunk.rows = n;
    if (chunk.features.rows() != width || chunk.features.cols() < n) chunk.features.resize(width, n);
    std::vector<char> ok(pending_.size(), 0);
#if defined(_OPENMP)
#pragma omp parallel for schedule(dynamic, 64) if (n >= 256)
#endif
    for (Index j = 0; j < n; ++j) {
      const pending& p = pending_[static_cast<std::size_t>(j)];
      ok[static_cast<std::size_t>(j)] = p.error.empty() && featurizer_->featurize(p.smiles, chunk.features.data() + j * width);
    }
    // In file order: keep the good ones, report the others (strict mode: the first one stops).
    Index kept = 0;
    std::vector<float> labels;
    for (Index j = 0; j < n; ++j) {
      pending& p = pending_[static_cast<std::size_t>(j)];
      if (!ok[static_cast<std::size_t>(j)]) {
        detail::reject(chunk, path_, p.line, p.smiles, p.error.empty() ? "invalid SMILES '" + p.smiles + "'" : p.error, o_.strict);
        continue;
      }
      if (kept != j) chunk.features.col(kept) = chunk.features.col(j);
      chunk.ids.push_back(std::move(p.id));
      labels.push_back(p.label);
      ++kept;
    }
    chunk.labels.resize(labelled() ? 1 : 0, kept);
    if (labelled()) for (Index j = 0; j < kept; ++j) chunk.labels(0, j) = labels[static_cast<std::size_t>(j)];
    return n > 0;
  }

 private:
  struct pending {
    Index line = 0;
    std::string smiles, id, error;  // error: why the row cannot be used, found while reading it
    float label = 0.0f;
  };

  /// Reads the next data row into `p`; false at the end of the file.
  bool read_row(pending& p) {
    p = pending{};
    if (!csv_) {
      std::string line;
      while (std::getline(smi_, line)) {
        ++line_;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        std::istringstream fields(line);
        if (!(fields >> p.smiles) || p.smiles[0] == '#') continue;  // blank or comment
        p.line = line_;
        fields >> p.id;
        if (p.id.empty()) p.id = std::to_string(line_);
        return true;
      }
      return false;
    }
    delimited_row row;
    try {
      if (!csv_reader_->next(row)) return false;
    } catch (const data_error& e) {  // a row of the wrong length: its message has file:line:column
      p.error = e.what();
      return true;
    }
    p.line = row.line;
    p.smiles = std::string(trim_spaces(row.fields[static_cast<std::size_t>(smiles_column_)]));
    if (p.smiles.empty()) p.error = "missing SMILES";
    p.id = id_column_ >= 0 ? std::string(row.fields[static_cast<std::size_t>(id_column_)]) : std::to_string(row.line);
    if (score_column_ >= 0) {
      try {
        const double score = csv_reader_->number(row, score_column_);
        if (!std::isfinite(score)) p.error = "missing score in column '" + o_.score_column + "'";
        p.label = detail::label_of(score, o_.docking_score);
      } catch (const data_error& e) {
        p.error = e.what();
      }
    }
    return true;
  }

  std::string path_;
  const MorganFeaturizer* featurizer_;
  molecule_read_options o_;
  bool csv_ = false;
  std::ifstream smi_;
  Index line_ = 0;
  std::unique_ptr<DelimitedReader> csv_reader_;
  Index smiles_column_ = -1, id_column_ = -1, score_column_ = -1;
  std::vector<pending> pending_;
};

/// Reads a whole .smi file or SMILES CSV/TSV (see SmilesReader) into one table.
inline molecule_table read_smiles_file(const std::string& path, const MorganFeaturizer& featurizer,
                                       const molecule_read_options& options = {}) {
  SmilesReader reader(path, featurizer, options);
  molecule_table table, chunk;
  detail::molecule_builder builder(featurizer.width(), reader.labelled());
  while (reader.next(16384, chunk)) {
    table.rows += chunk.rows;
    for (auto& r : chunk.rejected) table.rejected.push_back(std::move(r));
    for (Index j = 0; j < chunk.size(); ++j) {
      std::copy(chunk.features.col(j).data(), chunk.features.col(j).data() + chunk.features.rows(), builder.next_column());
      builder.commit(std::move(chunk.ids[static_cast<std::size_t>(j)]), reader.labelled() ? chunk.labels(0, j) : 0.0f);
    }
  }
  builder.finish(table);
  return table;
}

/// Reads precomputed features: `id_column` (optional), `options.score_column` (optional) and every
/// other column as a number (except a SMILES column). Non-numeric or missing feature values reject the row.
inline molecule_table read_feature_table(const std::string& path, const molecule_read_options& options = {}) {
  molecule_table table;
  DelimitedReader reader(path);
  const Index id_column = detail::pick_column(reader, options.id_column, {"title", "id", "name", "smiles"});
  const Index score_column = options.score_column.empty() ? -1 : reader.column(options.score_column);
  std::vector<Index> feature_columns;
  for (Index c = 0; c < static_cast<Index>(reader.header().size()); ++c)
    if (c != id_column && c != score_column && detail::lowercase(reader.header()[static_cast<std::size_t>(c)]) != "smiles")
      feature_columns.push_back(c);
  if (feature_columns.empty()) throw data_error(path + ": no feature columns besides the id and score");
  detail::molecule_builder builder(static_cast<Index>(feature_columns.size()), score_column >= 0);
  delimited_row row;
  while (true) {
    try {
      if (!reader.next(row)) break;
    } catch (const data_error& e) {
      if (options.strict) throw;
      ++table.rows;
      table.rejected.push_back({0, "", e.what()});
      continue;
    }
    ++table.rows;
    try {
      float* column = builder.next_column();
      for (std::size_t k = 0; k < feature_columns.size(); ++k) {
        const double v = reader.number(row, feature_columns[k]);
        if (!std::isfinite(v))
          throw data_error(detail::concat(reader.where(row, feature_columns[k]), ": missing value in feature column '",
                                          reader.header()[static_cast<std::size_t>(feature_columns[k])], "'"));
        column[k] = static_cast<float>(v);
      }
      const double score = score_column >= 0 ? reader.number(row, score_column) : 0.0;
      if (!std::isfinite(score))
        throw data_error(detail::concat(reader.where(row, score_column), ": missing score in column '", options.score_column, "'"));
      builder.commit(id_column >= 0 ? std::string(row.fields[static_cast<std::size_t>(id_column)]) : std::to_string(row.line),
                     detail::label_of(score, options.docking_score));
    } catch (const data_error& e) {
      detail::reject(table, path, row.line, "", e.what(), options.strict);
    }
  }
  builder.finish(table);
  return table;
}

}  // namespace strata
