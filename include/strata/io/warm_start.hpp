#pragma once
/// \file warm_start.hpp
/// Transfer learning's first step: start a model from another model's weights, matched by name
/// (a model file, a checkpoint, or a model in memory). What PyTorch users do with
/// `load_state_dict(strict=False)`, with the report it returns and the checks it lacks:
///   * tensors of both models with the same name and shape are copied;
///   * tensors under `reinitialize` (layer paths, as Model::set_group takes them: a head being
///     replaced, perhaps with another width) keep this model's initial values;
///   * every other shape difference is an error (a source of another width or architecture is
///     never half loaded), and so is a source that shares no tensor with the model at all;
///   * the names this model has and the source lacks (kept as initialised), and those the source
///     has and this model lacks (ignored), are reported; `strict` refuses either.
/// Everything is checked before anything changes. The model keeps its own settings (dropout
/// rates) and parameter groups: freezing is the refinement's choice, not the source's.

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "../core/parameter.hpp"
#include "model_state.hpp"
#include "state_file.hpp"

namespace strata {

/// Choices for a warm start.
struct warm_start_options {
  /// Layer-path patterns (Model::set_group's syntax, e.g. "2:Dense" or "1:Repeat/*") whose
  /// tensors keep this model's initial values, whatever the source holds for them.
  std::vector<std::string> reinitialize;
  /// Refuse unless every other tensor of this model is in the source and the source holds no
  /// tensor this model lacks.
  bool strict = false;
};

/// What a warm start did (names without the "parameter/" or "buffer/" prefix).
struct warm_start_report {
  std::vector<std::string> loaded;         ///< copied from the source
  std::vector<std::string> reinitialized;  ///< kept as initialised, as asked
  std::vector<std::string> missing;        ///< not in the source: kept as initialised
  std::vector<std::string> unexpected;     ///< in the source, not in this model: ignored

  /// One line: "loaded 14 tensors; kept 2 initial ('2:Dense.weight', '2:Dense.bias')".
  std::string summary() const {
    std::string text = detail::concat("loaded ", loaded.size(), " tensors");
    if (!reinitialized.empty()) text += detail::concat("; reinitialised ", reinitialized.size(), " (", detail::some_names(reinitialized), ")");
    if (!missing.empty()) text += detail::concat("; ", missing.size(), " not in the source (", detail::some_names(missing), ")");
    if (!unexpected.empty()) text += detail::concat("; ignored ", unexpected.size(), " of the source's (", detail::some_names(unexpected), ")");
    return text;
  }
};

/// Starts `model` from the tensors of `source` (a model file, checkpoint or exchange; `source_name`
/// names it in errors) as the file comment says. Throws io_error, changing nothing, for a shape
/// difference outside `reinitialize`, a source sharing no tensor with the model, or (strict) a
/// missing or unexpected tensor.
template <class ModelT>
warm_start_report warm_start(ModelT& model, const state_file& source, const std::string& source_name,
                             const warm_start_options& options = {}) {
  using B = typename ModelT::backend;
  warm_start_report report;
  std::vector<std::string> reshaped;
  std::set<std::string> known;
  const auto reinitialized = [&](const std::string& name) {
    for (const auto& pattern : options.reinitialize)
      if (detail::selects(pattern, name)) return true;
    return false;
  };
  const auto visit = [&](const std::string& prefix, const std::string& name, auto& m) {
    known.insert(prefix + name);
    if (reinitialized(name)) return report.reinitialized.push_back(name);
    const state_file::tensor* t = source.find(prefix + name);
    if (t == nullptr) return report.missing.push_back(name);
    if (t->rows != m.rows() || t->cols != m.cols())
      return reshaped.push_back(detail::concat("'", name, "' is ", shape_string(t->rows, t->cols), " there, ",
                                               shape_string(m.rows(), m.cols()), " here"));
    report.loaded.push_back(name);
  };
  for (auto& p : model.parameters()) {
    if (p.split.split())
      throw config_error("warm_start: '" + p.name + "' is split across model-parallel ranks; warm-start the serial model");
    visit("parameter/", p.name, *p.value);
  }
  for (auto& b : model.buffers()) visit("buffer/", b.name, *b.value);
  for (const auto& t : source.tensors)
    for (const char* prefix : {"parameter/", "buffer/"})
      if (t.name.rfind(prefix, 0) == 0 && known.count(t.name) == 0) report.unexpected.push_back(t.name.substr(std::string(prefix).size()));

  if (!reshaped.empty()) {
    std::string text;
    for (const auto& r : reshaped) text += (text.empty() ? "" : "; ") + r;
    throw io_error(source_name + " does not fit this model: " + text +
                   " (a head of another width is replaced by naming it in warm_start_options::reinitialize)");
  }
  if (report.loaded.empty())
    throw io_error(source_name + " shares no tensor with this model (a model of another architecture?): it holds " +
                   (report.unexpected.empty() ? std::string("no model tensor") : detail::some_names(report.unexpected)) +
                   ", this model " + detail::some_names(report.missing));
  if (options.strict && (!report.missing.empty() || !report.unexpected.empty()))
    throw io_error(source_name + " is not this model's exact architecture: " + report.summary());

  host_matrix<typename B::scalar> host;
  for (auto& p : model.parameters())
    if (std::find(report.loaded.begin(), report.loaded.end(), p.name) != report.loaded.end())
      detail::extract_tensor<B>(source, "parameter/" + p.name, *p.value, host);
  for (auto& b : model.buffers())
    if (std::find(report.loaded.begin(), report.loaded.end(), b.name) != report.loaded.end())
      detail::extract_tensor<B>(source, "buffer/" + b.name, *b.value, host);
  return report;
}

/// Starts `model` from a model file or checkpoint at `path` (see above).
template <class ModelT>
warm_start_report warm_start(ModelT& model, const std::string& path, const warm_start_options& options = {}) {
  return warm_start(model, state_file::read(path), "'" + path + "'", options);
}

/// Starts `model` from `source`, a model in memory (see above).
template <class ModelT, class SourceT>
warm_start_report warm_start_from(ModelT& model, SourceT& source, const warm_start_options& options = {}) {
  state_file file;
  write_model_state(file, source);
  return warm_start(model, file, "the source model", options);
}

}  // namespace strata
