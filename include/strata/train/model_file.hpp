#pragma once
/// \file model_file.hpp
/// A trained model on its own, for inference: the weights, buffers and run-time settings in the
/// checkpoint format (checksummed, atomic), without optimizer state, plus the caller's metadata
/// (what kind of model, its features, how its labels were scaled). `load_model` checks the
/// `kind` entry first, so a file of another model says so instead of failing on a tensor name.

#include <iomanip>
#include <map>
#include <string>

#include "../core/error.hpp"
#include "../graph/model.hpp"
#include "checkpoint.hpp"

namespace strata {

/// Writes `model` to `path` with `meta` (which should hold a "kind" entry).
template <class Spec, class B>
void save_model(Model<Spec, B>& model, const std::string& path, const std::map<std::string, std::string>& meta) {
  for (const auto& p : model.parameters())
    if (p.split.split())
      throw config_error("save_model: '" + p.name + "' is split across model-parallel ranks; save with the trainer's "
                         "checkpoint (whole tensors) instead");
  checkpoint file;
  file.meta = meta;
  file.meta["input_width"] = std::to_string(model.input_width());
  host_matrix<typename B::scalar> host;
  for (auto& p : model.parameters()) {
    B::download(*p.value, host);
    file.add("parameter/" + p.name, host);
  }
  for (auto& b : model.buffers()) {
    B::download(*b.value, host);
    file.add("buffer/" + b.name, host);
  }
  model.for_each_setting([&](const std::string& name, double& value) {
    file.meta["setting/" + name] = detail::concat(std::setprecision(17), value);
  });
  file.write(path);
}

/// Reads a model file into `model` (built already, for the file's input width) and returns its
/// metadata. Throws io_error when the file is not a model of `kind`, not of this architecture or
/// holds a malformed setting; everything is checked first, so on an error `model` is unchanged.
template <class Spec, class B>
std::map<std::string, std::string> load_model(Model<Spec, B>& model, const std::string& path, const std::string& kind) {
  const checkpoint file = checkpoint::read(path);
  const auto fail = [&](const std::string& what) { return io_error("model file '" + path + "' " + what); };
  const auto it = file.meta.find("kind");
  if (it == file.meta.end()) throw fail("has no 'kind' entry: it is not a model file (a training checkpoint?)");
  if (it->second != kind) throw fail("holds a " + it->second + " model, not a " + kind + " model");
  const auto width = file.meta.find("input_width");
  if (width == file.meta.end() || width->second != std::to_string(model.input_width()))
    throw fail(detail::concat("was trained on ", width == file.meta.end() ? std::string("?") : width->second,
                              " input features, this model reads ", model.input_width()));
  const auto check = [&](const std::string& key, const typename B::matrix& m) -> const checkpoint::tensor& {
    const checkpoint::tensor* t = file.find(key);
    if (t == nullptr) throw fail("has no tensor '" + key + "': it was written for another architecture");
    if (t->rows != m.rows() || t->cols != m.cols())
      throw fail(detail::concat("has '", key, "' of ", shape_string(t->rows, t->cols), ", this model's is ",
                                shape_string(m.rows(), m.cols())));
    return *t;
  };
  for (auto& p : model.parameters()) check("parameter/" + p.name, *p.value);
  for (auto& b : model.buffers()) check("buffer/" + b.name, *b.value);
  const auto settings = detail::checked_settings(file, model, fail);  // before anything changes too
  host_matrix<typename B::scalar> host;
  for (auto& p : model.parameters()) {
    checkpoint::extract(check("parameter/" + p.name, *p.value), host);
    B::upload(host, *p.value);
  }
  for (auto& b : model.buffers()) {
    checkpoint::extract(check("buffer/" + b.name, *b.value), host);
    B::upload(host, *b.value);
  }
  detail::apply_settings(model, settings);
  return file.meta;
}

}  // namespace strata
