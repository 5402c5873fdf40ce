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

#include <cmath>
#include <cstdint>
#include <iomanip>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "../core/error.hpp"
#include "../io/atomic_file.hpp"
#include "../layers/layer.hpp"
#include "model.hpp"

namespace strata {

/// Writes the JSON of one layer tree; layers call `field` and `child` from their `describe`.
class architecture_writer {
 public:
  /// A setting of the layer being described (before any `child`).
  void field(const char* name, double value) {
    if (!std::isfinite(value)) throw config_error(detail::concat("architecture: '", name, "' of '", path(), "' is ", value));
    std::ostringstream text;
    text << std::setprecision(17) << value;
    raw_field(name, text.str());
  }
  void field(const char* name, Index value) { raw_field(name, std::to_string(value)); }
  void field(const char* name, bool value) { raw_field(name, value ? "true" : "false"); }
  void field(const char* name, const std::string& value) { raw_field(name, quoted(value)); }
  void field(const char* name, const std::vector<Index>& values) {
    std::string list = "[";
    for (std::size_t k = 0; k < values.size(); ++k) list += (k > 0 ? ", " : "") + std::to_string(values[k]);
    raw_field(name, list + "]");
  }

  /// Sub-layer number `index` (of kind `kind`) of the layer being described.
  template <class Layer>
  void child(Index index, const char* kind, const Layer& layer) {
    frame& parent = frames_.back();
    out_ += parent.children_open ? ",\n" : ", \"children\": [\n";
    parent.children_open = true;
    node(kind, build_context::child_path(parent.path, index, kind), layer);
  }

  /// Describes `layer` (of kind `kind`) as the node at `path`.
  template <class Layer>
  void node(const char* kind, const std::string& path, const Layer& layer) {
    out_ += std::string(2 * frames_.size() + 2, ' ') + "{\"kind\": " + quoted(kind) + ", \"path\": " + quoted(path);
    frames_.push_back({path, false});
    detail::describe_layer(layer, *this);
    if (frames_.back().children_open) out_ += "]";
    out_ += "}";
    frames_.pop_back();
  }

  const std::string& json() const { return out_; }

 private:
  struct frame {
    std::string path;
    bool children_open;
  };

  const std::string& path() const { return frames_.back().path; }

  void raw_field(const char* name, const std::string& value) {
    if (frames_.empty() || frames_.back().children_open)
      throw config_error(detail::concat("architecture: '", name, "' described after the children of '",
                                        frames_.empty() ? std::string() : path(), "'"));
    out_ += ", " + quoted(name) + ": " + value;
  }

  static std::string quoted(const std::string& text) {
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

  std::string out_;
  std::vector<frame> frames_;
};

/// The architecture of built `model` as JSON (see the file comment).
template <class Spec, class B>
std::string describe_architecture(Model<Spec, B>& model) {
  if (!model.built()) throw config_error("describe_architecture: build the model first");
  using T = typename B::scalar;
  const char* scalar = std::is_same_v<T, float> ? "float32" : std::is_same_v<T, double> ? "float64" : "other";
  architecture_writer w;
  model.describe(w);
  return detail::concat("{\"format\": \"strata-architecture\", \"version\": 1, \"input_width\": ", model.input_width(),
                        ", \"output_width\": ", model.output_width(), ", \"scalar\": \"", scalar, "\",\n \"model\":\n",
                        w.json(), "\n}\n");
}

/// Writes `describe_architecture(model)` to `path` (whole or not at all).
template <class Spec, class B>
void write_architecture(Model<Spec, B>& model, const std::string& path) {
  detail::write_bytes_atomically(path, describe_architecture(model));
}

}  // namespace strata
