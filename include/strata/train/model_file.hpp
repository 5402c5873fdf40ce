#pragma once
/// \file model_file.hpp
/// A trained model on its own, for inference: the model's state (io/model_state.hpp) in a state
/// file (checksummed, atomic), without optimizer state, plus the caller's metadata
/// (what kind of model, its features, how its labels were scaled). `load_model` checks the
/// `kind` entry first, so a file of another model says so instead of failing on a tensor name.

#include <iomanip>
#include <map>
#include <string>
#include <utility>

#include "../core/error.hpp"
#include "../graph/model.hpp"
#include "../io/model_state.hpp"

namespace strata {

/// Writes `model` to `path` beside `contents`: the caller's metadata (which should hold a
/// "kind" entry) and tensors (e.g. feature scalers; names outside `parameter/` and `buffer/`).
template <class Spec, class B>
void save_model_file(Model<Spec, B>& model, const std::string& path, state_file contents) {
  for (const auto& p : model.parameters())
    if (p.split.split())
      throw config_error("save_model: '" + p.name + "' is split across model-parallel ranks; save with the trainer's "
                         "checkpoint (whole tensors) instead");
  write_model_state(contents, model);
  contents.write(path);
}

/// Writes `model` to `path` with `meta` (which should hold a "kind" entry).
template <class Spec, class B>
void save_model(Model<Spec, B>& model, const std::string& path, const std::map<std::string, std::string>& meta) {
  state_file contents;
  contents.meta = meta;
  save_model_file(model, path, std::move(contents));
}

/// Checks that `file` (read from `path`) is a model of `kind` for `model`'s architecture and copies
/// its state into `model` (built already, for the file's input width). Throws io_error when the
/// file is not a model of `kind`, not of this architecture or holds a malformed setting;
/// everything is checked first, so on an error `model` is unchanged. The model keeps its own
/// parameter groups.
template <class Spec, class B>
void apply_model_file(Model<Spec, B>& model, const state_file& file, const std::string& path, const std::string& kind) {
  const auto fail = [&](const std::string& what) { return io_error("model file '" + path + "' " + what); };
  const auto it = file.meta.find("kind");
  if (it == file.meta.end()) throw fail("has no 'kind' entry: it is not a model file (a training checkpoint?)");
  if (it->second != kind) throw fail("holds a " + it->second + " model, not a " + kind + " model");
  if (file.meta.count("input_width") == 0) throw fail("has no 'input_width' entry");
  checked_model_state<Model<Spec, B>>(file, model, fail).apply(false);
}

/// Reads the model file `path` into `model` (see `apply_model_file`) and returns the whole file:
/// the caller's metadata and tensors beside the model's.
template <class Spec, class B>
state_file load_model_file(Model<Spec, B>& model, const std::string& path, const std::string& kind) {
  state_file file = state_file::read(path);
  apply_model_file(model, file, path, kind);
  return file;
}

/// `load_model_file`, returning the metadata only.
template <class Spec, class B>
std::map<std::string, std::string> load_model(Model<Spec, B>& model, const std::string& path, const std::string& kind) {
  return load_model_file(model, path, kind).meta;
}

}  // namespace strata
