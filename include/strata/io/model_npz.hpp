#pragma once
/// \file model_npz.hpp
/// A model's named tensors as a NumPy `.npz` archive (io/npz.hpp), for NumPy and PyTorch: every
/// parameter and buffer under its Strata name (e.g. `model/0:Fork/0:Branch/1:Dense.weight`),
/// in the model's precision. Dense weights are `out x in`, as `torch.nn.Linear.weight` holds
/// them; the other one-column tensors (biases, normalisation scales and shifts, running
/// statistics) are one-dimensional, as PyTorch holds them.
///
/// Import checks the whole archive against the model before it changes anything: names
/// missing from the archive, names the model lacks and shapes that differ are listed together;
/// a strict import (the default) refuses on any of them, a partial one (a warm start from a
/// related model) loads the tensors present and reports the rest. Any fault of the archive
/// (truncated, corrupt, a wrong dtype, a non-finite value) is an io_error and the model stays as
/// it was. Needs `Strata::npz` (libzip).

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "model_state.hpp"
#include "npz.hpp"

namespace strata {

/// How an import treats tensors the archive and the model do not share.
enum class npz_match {
  strict,  ///< every tensor of the model present, nothing else in the archive
  partial  ///< load what matches by name; report the missing and the unexpected
};

/// What an import did.
struct npz_import_report {
  std::vector<std::string> loaded;      ///< tensors set from the archive
  std::vector<std::string> missing;     ///< tensors of the model the archive lacks (kept as they were)
  std::vector<std::string> unexpected;  ///< arrays of the archive the model has no tensor for
};

/// Every parameter and buffer of `model` as arrays (host copies).
template <class ModelT>
npz_archive model_arrays(ModelT& model) {
  using B = typename ModelT::backend;
  npz_archive archive;
  host_matrix<typename B::scalar> host;
  detail::for_each_named_tensor(model, "save_npz", [&](const std::string& name, auto& m) {
    B::download(m, host);
    archive.add(name, host, detail::exported_as_vector(name, host.cols(), ModelT::spec_type::kind));
  });
  return archive;
}

/// Writes `model`'s tensors to `path` as an .npz archive (whole or not at all).
template <class ModelT>
void save_npz(ModelT& model, const std::string& path) {
  model_arrays(model).write(path);
}

/// Sets `model`'s tensors from `archive` (`source` names it in errors), checking everything
/// first; see the file comment for strict and partial matching.
template <class ModelT>
npz_import_report import_arrays(ModelT& model, const npz_archive& archive, const std::string& source,
                                npz_match match = npz_match::strict) {
  using B = typename ModelT::backend;
  using T = typename B::scalar;
  npz_import_report report;
  std::vector<std::string> mismatched;
  std::map<std::string, const npy_array*> ready;
  std::map<std::string, bool> used;
  for (const auto& entry : archive.arrays) used[entry.first] = false;
  detail::for_each_named_tensor(model, "load_npz", [&](const std::string& name, auto& m) {
    const auto it = archive.arrays.find(name);
    if (it == archive.arrays.end()) {
      report.missing.push_back(name);
      return;
    }
    used[name] = true;
    const npy_array& a = it->second;
    const bool as_vector = detail::exported_as_vector(name, m.cols(), ModelT::spec_type::kind);
    const bool fits = a.rows() == m.rows() && a.cols() == m.cols() && (a.shape.size() == 2 || as_vector);
    if (!fits) {
      std::string shape = "(";
      for (std::size_t d = 0; d < a.shape.size(); ++d) shape += (d > 0 ? ", " : "") + std::to_string(a.shape[d]);
      mismatched.push_back(detail::concat("'", name, "' is ", shape, ") in the archive but ",
                                          as_vector ? "(" + std::to_string(m.rows()) + ")" : "(" + std::to_string(m.rows()) + ", " + std::to_string(m.cols()) + ")",
                                          " in this model"));
      return;
    }
    for (double v : a.values)
      if (!std::isfinite(v)) throw io_error(source + ": array '" + name + "' holds a non-finite value (NaN or infinity)");
    ready[name] = &a;
    report.loaded.push_back(name);
  });
  for (const auto& [name, was_used] : used)
    if (!was_used) report.unexpected.push_back(name);
  if (!mismatched.empty()) {
    std::string text;
    for (const auto& m : mismatched) text += (text.empty() ? "" : "; ") + m;
    throw io_error(source + " does not fit this model: " + text);
  }
  if (match == npz_match::strict && (!report.missing.empty() || !report.unexpected.empty())) {
    std::string text;
    if (!report.missing.empty()) text += "it lacks " + detail::some_names(report.missing);
    if (!report.unexpected.empty())
      text += (text.empty() ? "" : "; ") + std::string("this model has no tensor ") + detail::some_names(report.unexpected);
    throw io_error(source + " was written for a different model: " + text + " (a partial import loads what matches)");
  }
  if (report.loaded.empty()) throw io_error(source + " holds no tensor of this model");
  host_matrix<T> host;
  detail::for_each_named_tensor(model, "load_npz", [&](const std::string& name, auto& m) {
    const auto it = ready.find(name);
    if (it == ready.end()) return;
    host.resize(m.rows(), m.cols());
    for (Index r = 0; r < host.rows(); ++r)
      for (Index c = 0; c < host.cols(); ++c) host(r, c) = static_cast<T>(it->second->values[static_cast<std::size_t>(r * host.cols() + c)]);
    B::upload(host, m);
  });
  return report;
}

/// Reads the .npz archive at `path` into `model` (see import_arrays).
template <class ModelT>
npz_import_report load_npz(ModelT& model, const std::string& path, npz_match match = npz_match::strict) {
  const std::string source = "npz archive '" + path + "'";
  return import_arrays(model, npz_archive::read(path), source, match);
}

}  // namespace strata
