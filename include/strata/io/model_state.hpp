#pragma once
/// \file model_state.hpp
/// A model's state in a state file, written and read in one place for training checkpoints,
/// inference model files and tournament exchanges (and the export formats built on them):
///   tensor  parameter/<name>   every parameter, whole (also when model parallelism splits it)
///   tensor  buffer/<name>      every buffer (running statistics)
///   meta    setting/<name>     every run-time setting (dropout rates), as decimal text
///   meta    group/<name>       every parameter's group: "<lr_scale> decay|no_decay"
///   meta    input_width        the width the model was built for
///   meta    state_version      the version of this layout (absent in files from before groups)
/// Callers add their own entries beside these (optimizer/..., the loop position, a model kind,
/// a feature scaler). The export formats (.npz, ONNX) walk the same tensors through
/// `detail::for_each_named_tensor`. Reading checks everything against the model before anything changes, so
/// a file of another architecture is an error that names the first difference and leaves the
/// model as it was.

#include <iomanip>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../core/hash.hpp"
#include "../core/parameter_store.hpp"
#include "../core/parse.hpp"
#include "../core/tensor.hpp"
#include "state_file.hpp"

namespace strata {

/// The layout version written into `state_version`; files from before it say nothing (version
/// 1: no groups) and still load, files of a newer layout are refused with both versions named.
inline constexpr int model_state_version = 2;

/// How to see a parameter whole: `f(whole matrix)` for a tensor this process holds all of. A
/// strategy's `with_whole` does the same for tensors split across a model-parallel group.
struct held_whole {
  template <class B, class M, class F>
  void with_whole(const row_split& split, M& m, F&& f) const {
    if (split.split())
      throw config_error("model state: a tensor split across model-parallel ranks needs the strategy to gather it "
                         "(save through the trainer's checkpoint instead)");
    f(m);
  }
};

namespace detail {
/// Adds backend-B matrix `m` to `file` under `key`: straight from its memory on a host backend,
/// through `host` (scratch) on a device backend.
template <class B, class M>
void add_tensor(state_file& file, const std::string& key, const M& m, host_matrix<typename B::scalar>& host) {
  if constexpr (host_storage<B>) {
    file.add(key, m);
  } else {
    B::download(m, host);
    file.add(key, host);
  }
}

/// Copies `file`'s tensor `key` (present with `m`'s shape: checked before) into backend-B matrix
/// `m`, as add_tensor does the other way.
template <class B, class M>
void extract_tensor(const state_file& file, const std::string& key, M& m, host_matrix<typename B::scalar>& host) {
  if constexpr (host_storage<B>) {
    state_file::extract(*file.find(key), m);
  } else {
    state_file::extract(*file.find(key), host);
    B::upload(host, m);
  }
}
}  // namespace detail

/// Writes `model`'s state (parameters, buffers, settings, groups, input width) into `file`.
/// `whole` gathers split tensors (a strategy; collective then); `keep_tensors` false (ranks
/// other than the one that writes) takes part in the gathers without copying any tensor.
template <class ModelT, class Whole = held_whole>
void write_model_state(state_file& file, ModelT& model, Whole&& whole = {}, bool keep_tensors = true) {
  using B = typename ModelT::backend;
  host_matrix<typename B::scalar> host;
  const auto add = [&](const std::string& key, auto& m) {
    if (keep_tensors) detail::add_tensor<B>(file, key, m, host);
  };
  for (auto& p : model.parameters())
    whole.template with_whole<B>(p.split, *p.value, [&](auto& m) { add("parameter/" + p.name, m); });
  for (auto& b : model.buffers()) add("buffer/" + b.name, *b.value);
  model.for_each_setting([&](const std::string& name, double& value) {
    file.meta["setting/" + name] = detail::concat(std::setprecision(17), value);
  });
  for (const auto& p : model.parameters())
    file.meta["group/" + p.name] = detail::concat(std::setprecision(17), p.group.lr_scale, p.group.weight_decay ? " decay" : " no_decay");
  file.meta["input_width"] = std::to_string(model.input_width());
  file.meta["state_version"] = std::to_string(model_state_version);
}

namespace detail {
/// Throws what `fail(text)` makes unless `file` holds tensor `key` of rows x cols.
template <class Fail>
void require_tensor(const state_file& file, const std::string& key, Index rows, Index cols, Fail& fail) {
  const state_file::tensor* t = file.find(key);
  if (t == nullptr) throw fail("was written for a different model: it has no tensor '" + key + "'");
  if (t->rows != rows || t->cols != cols)
    throw fail(detail::concat("was written for a different model: '", key, "' is ", shape_string(t->rows, t->cols),
                              " in the file but ", shape_string(rows, cols), " in this model"));
}

/// Throws what `fail(text)` makes when `file` holds a tensor under `prefix` that `known` lacks
/// (a tensor of another model; keys under other prefixes are the caller's extras).
template <class Known, class Fail>
void refuse_unknown_tensors(const state_file& file, const std::string& prefix, const Known& known, Fail& fail) {
  for (const auto& t : file.tensors)
    if (t.name.compare(0, prefix.size(), prefix) == 0 && known.count(t.name) == 0)
      throw fail("was written for a different model: this model has no tensor '" + t.name + "'");
}
}  // namespace detail

/// FNV-1a-64 of every parameter's bytes, whole tensors in build order: equal for models equal to
/// the bit, the same however a strategy splits them (`whole` gathers split tensors; collective).
template <class ModelT, class Whole = held_whole>
std::uint64_t weights_checksum(ModelT& model, Whole&& whole = {}) {
  using B = typename ModelT::backend;
  std::uint64_t h = fnv1a64_offset;
  host_matrix<typename B::scalar> host;
  for (auto& p : model.parameters())
    whole.template with_whole<B>(p.split, *p.value, [&](auto& m) {
      const typename B::scalar* data = m.data();
      if constexpr (!detail::host_storage<B>) {
        B::download(m, host);
        data = host.data();
      }
      h = fnv1a64(data, sizeof(typename B::scalar) * static_cast<std::size_t>(m.size()), h);
    });
  return h;
}

/// Optimizer state in a state file: `for_each_tensor(f)` calls `f(key, matrix&)` for every
/// state tensor under its key ("optimizer/<parameter>.<state>", whole tensors; a strategy may
/// gather them, so it is collective then). Writing keeps the tensors only where `keep_tensors`.
template <class B, class ForEach>
void write_optimizer_state(state_file& file, ForEach&& for_each_tensor, bool keep_tensors) {
  host_matrix<typename B::scalar> host;
  for_each_tensor([&](const std::string& key, typename B::matrix& m) {
    if (keep_tensors) detail::add_tensor<B>(file, key, m, host);
  });
}

/// Throws what `fail(text)` makes unless `file` holds every optimizer tensor with its shape and
/// no optimizer tensor of another model.
template <class B, class ForEach, class Fail>
void check_optimizer_state(const state_file& file, ForEach&& for_each_tensor, Fail& fail) {
  std::set<std::string> known;
  for_each_tensor([&](const std::string& key, typename B::matrix& m) {
    known.insert(key);
    detail::require_tensor(file, key, m.rows(), m.cols(), fail);
  });
  detail::refuse_unknown_tensors(file, "optimizer/", known, fail);
}

/// Copies the optimizer tensors from `file` (checked by check_optimizer_state) into the state.
template <class B, class ForEach>
void read_optimizer_state(const state_file& file, ForEach&& for_each_tensor) {
  host_matrix<typename B::scalar> host;
  for_each_tensor([&](const std::string& key, typename B::matrix& m) { detail::extract_tensor<B>(file, key, m, host); });
}

/// A model's state read from a file and checked against the model: every parameter and buffer
/// present with the model's (whole) shape and no tensor of another model, settings in range,
/// groups well formed, the same input width. Construction checks (throwing what `fail(text)`
/// makes, text such as "has no tensor 'parameter/...'"); `apply` then changes the model.
template <class ModelT>
class checked_model_state {
 public:
  using B = typename ModelT::backend;

  template <class Fail>
  checked_model_state(const state_file& file, ModelT& model, Fail&& fail) : file_(file), model_(model) {
    const auto version = file.meta.find("state_version");
    if (version != file.meta.end() && version->second != "1" && version->second != std::to_string(model_state_version))
      throw fail(detail::concat("holds model state of layout version ", version->second, "; this build reads versions 1 to ",
                                model_state_version, " (a newer Strata wrote it)"));
    const auto width = file.meta.find("input_width");
    if (width != file.meta.end() && width->second != std::to_string(model.input_width()))
      throw fail(detail::concat("was trained on ", width->second, " input features, this model reads ", model.input_width()));
    for (auto& p : model.parameters()) {
      const Index rows = p.split.split() ? p.split.whole_rows : p.value->rows();
      check_tensor(fail, "parameter/" + p.name, rows, p.value->cols());
    }
    for (auto& b : model.buffers()) check_tensor(fail, "buffer/" + b.name, b.value->rows(), b.value->cols());
    detail::refuse_unknown_tensors(file, "parameter/", known_, fail);
    detail::refuse_unknown_tensors(file, "buffer/", known_, fail);
    model.for_each_setting([&](const std::string& name, double&) {
      const auto it = file.meta.find("setting/" + name);
      if (it == file.meta.end()) return;  // files from before settings were saved
      double v = 0.0;
      if (!detail::parse_finite(it->second, v)) throw fail("has a malformed setting '" + name + "' = '" + it->second + "'");
      if (!(v >= 0.0 && v < 1.0)) throw fail(detail::concat("has setting '", name, "' = ", v, ", outside [0, 1)"));
      settings_[name] = v;
    });
    for (const auto& p : model.parameters()) {
      const auto it = file.meta.find("group/" + p.name);
      if (it == file.meta.end()) {  // files from before groups: keep the model's
        groups_.push_back(p.group);
        continue;
      }
      const std::string& text = it->second;
      const auto space = text.find(' ');
      const std::string decay = space == std::string::npos ? std::string() : text.substr(space + 1);
      parameter_group g;
      if (space == std::string::npos || !detail::parse_finite(text.substr(0, space), g.lr_scale) || g.lr_scale < 0.0 ||
          (decay != "decay" && decay != "no_decay"))
        throw fail("has a malformed parameter group for '" + p.name + "' ('" + text + "')");
      g.weight_decay = decay == "decay";
      groups_.push_back(g);
    }
  }

  /// Copies the state into the model: weights (through `whole` for split tensors; collective
  /// then), buffers and settings, and the groups when `with_groups` (a resume continues the same
  /// run, frozen layers included; a warm start keeps the groups its program chose).
  template <class Whole = held_whole>
  void apply(bool with_groups, Whole&& whole = {}) {
    host_matrix<typename B::scalar> host;
    for (auto& p : model_.parameters())
      whole.template with_whole<B>(p.split, *p.value,
                                   [&](auto& m) { detail::extract_tensor<B>(file_, "parameter/" + p.name, m, host); });
    for (auto& b : model_.buffers()) detail::extract_tensor<B>(file_, "buffer/" + b.name, *b.value, host);
    model_.for_each_setting([&](const std::string& name, double& value) {
      const auto it = settings_.find(name);
      if (it != settings_.end()) value = it->second;
    });
    if (with_groups)
      for (std::size_t k = 0; k < groups_.size(); ++k) model_.parameters()[k].group = groups_[k];
  }

 private:
  template <class Fail>
  void check_tensor(Fail& fail, const std::string& key, Index rows, Index cols) {
    known_.insert(key);
    detail::require_tensor(file_, key, rows, cols, fail);
  }

  const state_file& file_;
  ModelT& model_;
  std::set<std::string> known_;
  std::map<std::string, double> settings_;
  std::vector<parameter_group> groups_;
};

namespace detail {
/// Whether tensor `name` (a model of root layer `root_kind`) is one-dimensional in NumPy and
/// PyTorch: every one-column tensor except a dense layer's weight matrix, which stays `out x in`
/// even when its input is one feature wide.
inline bool exported_as_vector(const std::string& name, Index cols, const std::string& root_kind) {
  if (cols != 1) return false;
  const auto dot = name.rfind('.');
  const auto colon = name.rfind(':');
  const std::string kind = colon == std::string::npos || (dot != std::string::npos && colon > dot)
                               ? root_kind
                               : name.substr(colon + 1, dot == std::string::npos ? std::string::npos : dot - colon - 1);
  const bool weight = dot != std::string::npos && name.compare(dot, std::string::npos, ".weight") == 0;
  const bool dense = kind.size() >= 5 && kind.compare(kind.size() - 5, 5, "Dense") == 0;
  return !(weight && dense);
}

/// Up to five names of `names`, quoted, then how many more.
inline std::string some_names(const std::vector<std::string>& names) {
  std::string text;
  for (std::size_t k = 0; k < names.size() && k < 5; ++k) text += (k > 0 ? ", '" : "'") + names[k] + "'";
  if (names.size() > 5) text += concat(" and ", names.size() - 5, " more");
  return text;
}

/// Calls f(name, matrix&) for every parameter and buffer of `model`, refusing split tensors.
template <class ModelT, class F>
void for_each_named_tensor(ModelT& model, const char* who, F&& f) {
  for (auto& p : model.parameters()) {
    if (p.split.split())
      throw config_error(std::string(who) + ": '" + p.name +
                         "' is split across model-parallel ranks; export a model whose tensors this process holds whole");
    f(p.name, *p.value);
  }
  for (auto& b : model.buffers()) f(b.name, *b.value);
}
}  // namespace detail

}  // namespace strata
