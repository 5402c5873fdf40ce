#pragma once
/// \file architecture.hpp
/// A built model's architecture as JSON, for programs outside Strata that rebuild it (the
/// PyTorch helper scripts/strata_torch.py, ONNX export): the layer tree in build order, each
/// node with its kind, its path (the prefix of its tensors' names: `<path>.weight`), its
/// configuration (a Dense layer's width and bias, a dropout rate, a slice's bounds, ...) and its
/// children:
///
///   {"format": "strata-architecture", "version": 1, "input_width": 8579, "output_width": 1,
///    "scalar": "float32",
///    "model": {"kind": "Sequential", "path": "model", "children": [
///      {"kind": "Fork", "path": "model/0:Fork", "children": [...]}, ...]}}
///
/// Widths follow from `input_width` as Strata's build derives them. A layer describes itself
/// through an optional `describe(w)` member (layers/layer.hpp); one without it appears with its
/// kind and path only.

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <cstdint>
#include <iomanip>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../io/atomic_file.hpp"
#include "../layers/layer.hpp"
#include "model.hpp"

namespace strata {

namespace detail {
/// `text` as a JSON string: quotes and backslashes escaped, control characters as \u00XX.
inline std::string json_quoted(const std::string& text) {
  std::string q = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') {
      q += '\\';
      q += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned>(c));
      q += escaped;
    } else {
      q += c;
    }
  }
  return q + "\"";
}
}  // namespace detail

/// Members a program adds to the top level of the architecture JSON beside the model: each a
/// name and a JSON value (e.g. how raw features are scaled before the model sees them).
using architecture_extras = std::vector<std::pair<std::string, std::string>>;

/// One layer of a described model: its kind, its path, its settings (in the order the layer
/// gave them, each as JSON text) and its sub-layers. What the JSON says, in memory, for programs
/// that walk the tree themselves (ONNX export).
struct architecture_node {
  std::string kind, path;
  std::vector<std::pair<std::string, std::string>> fields;
  std::vector<architecture_node> children;

  /// The setting `name` as JSON text; config_error naming the layer when it has none.
  const std::string& field(const std::string& name) const {
    for (const auto& [key, value] : fields)
      if (key == name) return value;
    throw config_error("architecture: '" + path + "' (" + kind + ") has no setting '" + name + "'");
  }
  /// A numeric setting (written with 17 digits, so read back exactly).
  double number(const std::string& name) const { return std::strtod(field(name).c_str(), nullptr); }
  /// A yes/no setting.
  bool flag(const std::string& name) const { return field(name) == "true"; }
  /// A list of whole numbers ("[3, 6]").
  std::vector<Index> integers(const std::string& name) const {
    std::vector<Index> out;
    const std::string& text = field(name);
    for (std::size_t k = 0; k < text.size();) {
      if (std::isdigit(static_cast<unsigned char>(text[k])) || text[k] == '-') {
        std::size_t used = 0;
        out.push_back(static_cast<Index>(std::stoll(text.substr(k), &used)));
        k += used;
      } else {
        ++k;
      }
    }
    return out;
  }

  /// The node as JSON, its first line indented by `indent` spaces (children by 2 more).
  std::string json(std::size_t indent = 2) const {
    std::string out = std::string(indent, ' ') + "{\"kind\": " + detail::json_quoted(kind) + ", \"path\": " +
                      detail::json_quoted(path);
    for (const auto& [name, value] : fields) out += ", " + detail::json_quoted(name) + ": " + value;
    for (std::size_t c = 0; c < children.size(); ++c) out += (c == 0 ? ", \"children\": [\n" : ",\n") + children[c].json(indent + 2);
    return out + (children.empty() ? "}" : "]}");
  }
};

/// Records a layer tree as `architecture_node`s; layers call `field` and `child` from their
/// `describe` (layers/layer.hpp).
class architecture_writer {
 public:
  /// A setting of the layer being described (before any `child`).
  void field(const char* name, double value) {
    if (!std::isfinite(value)) throw config_error(detail::concat("architecture: '", name, "' of '", current().path, "' is ", value));
    std::ostringstream text;
    text << std::setprecision(17) << value;
    raw_field(name, text.str());
  }
  void field(const char* name, Index value) { raw_field(name, std::to_string(value)); }
  void field(const char* name, bool value) { raw_field(name, value ? "true" : "false"); }
  void field(const char* name, const std::string& value) { raw_field(name, detail::json_quoted(value)); }
  void field(const char* name, const std::vector<Index>& values) {
    std::string list = "[";
    for (std::size_t k = 0; k < values.size(); ++k) list += (k > 0 ? ", " : "") + std::to_string(values[k]);
    raw_field(name, list + "]");
  }

  /// Sub-layer number `index` (of kind `kind`) of the layer being described.
  template <class Layer>
  void child(Index index, const char* kind, const Layer& layer) {
    architecture_node& parent = current();
    parent.children.emplace_back();
    describe_into(parent.children.back(), kind, build_context::child_path(parent.path, index, kind), layer);
  }

  /// Describes `layer` (of kind `kind`) as the node at `path`: the root, when first called.
  template <class Layer>
  void node(const char* kind, const std::string& path, const Layer& layer) {
    describe_into(root_, kind, path, layer);
  }

  /// The tree described so far.
  const architecture_node& root() const { return root_; }
  /// It as JSON.
  std::string json() const { return root_.json(); }

 private:
  template <class Layer>
  void describe_into(architecture_node& n, const char* kind, const std::string& path, const Layer& layer) {
    n.kind = kind;
    n.path = path;
    stack_.push_back(&n);
    detail::describe_layer(layer, *this);
    stack_.pop_back();
  }

  architecture_node& current() {
    if (stack_.empty()) throw config_error("architecture: a setting or child outside of any layer");
    return *stack_.back();
  }

  void raw_field(const char* name, const std::string& value) {
    architecture_node& n = current();
    if (!n.children.empty())
      throw config_error(detail::concat("architecture: '", name, "' described after the children of '", n.path, "'"));
    n.fields.emplace_back(name, value);
  }

  architecture_node root_;
  std::vector<architecture_node*> stack_;  // the layers being described, innermost last
};

/// The layer tree of built `model`.
template <class Spec, class B>
architecture_node architecture_tree(Model<Spec, B>& model) {
  if (!model.built()) throw config_error("architecture_tree: build the model first");
  architecture_writer w;
  model.describe(w);
  return w.root();
}

/// The architecture of built `model` as JSON (see the file comment).
template <class Spec, class B>
std::string describe_architecture(Model<Spec, B>& model, const architecture_extras& extras = {}) {
  if (!model.built()) throw config_error("describe_architecture: build the model first");
  using T = typename B::scalar;
  const char* scalar = std::is_same_v<T, float> ? "float32" : std::is_same_v<T, double> ? "float64" : "other";
  const architecture_node tree = architecture_tree(model);
  std::string members;
  for (const auto& [name, value] : extras) members += ",\n " + detail::json_quoted(name) + ": " + value;
  return detail::concat("{\"format\": \"strata-architecture\", \"version\": 1, \"input_width\": ", model.input_width(),
                        ", \"output_width\": ", model.output_width(), ", \"scalar\": \"", scalar, "\",\n \"model\":\n",
                        tree.json(), members, "\n}\n");
}

/// Writes `describe_architecture(model, extras)` to `path` (whole or not at all).
template <class Spec, class B>
void write_architecture(Model<Spec, B>& model, const std::string& path, const architecture_extras& extras = {}) {
  detail::write_bytes_atomically(path, describe_architecture(model, extras));
}

}  // namespace strata
