#pragma once
/// \file onnx.hpp
/// A built model as an ONNX model for deployment (ONNX Runtime, TensorRT), written with the
/// ONNX project's own protobuf definitions (Debian's libonnx-dev, libprotobuf): opset 17, IR
/// version 8, so that ONNX 1.12's checker accepts it. The graph follows the layer tree
/// (graph/architecture.hpp) in evaluation mode:
///   Dense, SparseInputDense  Gemm (transB = 1, the weight stays out x in as Strata holds it)
///   ReLU, LeakyReLU, ELU, Sigmoid, Tanh   Relu, LeakyRelu, Elu, Sigmoid, Tanh
///   BatchNorm, LayerNorm     BatchNormalization (running statistics), LayerNormalization
///   Slice, Fork              Slice over the feature axis, Concat
///   Shared                   its network applied to each slice, every application reading the
///                            same initializers (one copy of the weights), outputs concatenated
///   Residual                 Add
///   Dropout, Identity        nothing (evaluation mode); Dropout{when::always} is refused
/// Input `input` is samples x features (rows are samples, as ONNX Runtime and PyTorch lay data
/// out; the sample count is symbolic, "N"), output `prediction` samples x outputs, in the model's
/// precision. Every tensor keeps its Strata name. Needs `Strata::onnx`.

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "../graph/architecture.hpp"
#include "../graph/model.hpp"
#include "atomic_file.hpp"
#include "model_state.hpp"

namespace strata {

/// What the exported graph is called and says about itself.
struct onnx_options {
  std::string graph_name = "strata";
  std::string doc;  ///< free text stored as the model's doc_string (e.g. what it predicts)
};

/// The ONNX opset and IR version Strata writes.
inline constexpr std::int64_t onnx_opset = 17, onnx_ir_version = 8;

namespace detail {

/// Builds the graph of one model: nodes from the layer tree, initializers from its tensors.
template <class T>
class onnx_graph_builder {
 public:
  onnx_graph_builder(onnx::GraphProto& graph, const std::map<std::string, host_matrix<T>>& tensors, std::string root_kind)
      : graph_(graph), tensors_(tensors), root_kind_(std::move(root_kind)) {}

  /// Emits `n` applied to the value `x`; returns the name of its output. `scope` keeps the
  /// names of a shared network's applications apart.
  std::string emit(const architecture_node& n, const std::string& x, const std::string& scope) {
    const std::string& k = n.kind;
    const std::string out = scope + n.path;
    if (k == "Sequential" || k == "Branch" || k == "Repeat") {
      std::string y = x;
      for (const auto& c : n.children) y = emit(c, y, scope);
      return y;
    }
    if (k == "Fork") {
      std::vector<std::string> parts;
      for (const auto& c : n.children) parts.push_back(emit(c, x, scope));
      return node("Concat", parts, out, {{"axis", 1}});
    }
    if (k == "Slice") return slice(x, n.number("begin"), n.number("end"), out);
    if (k == "Shared") {
      const std::vector<Index> begins = n.integers("begins"), ends = n.integers("ends");
      std::vector<std::string> parts;
      for (std::size_t a = 0; a < begins.size(); ++a) {
        const std::string application = concat(scope, "apply", a, "/");
        const std::string part = slice(x, static_cast<double>(begins[a]), static_cast<double>(ends[a]), application + n.path + "/input");
        parts.push_back(emit(n.children.at(0), part, application));
      }
      return node("Concat", parts, out, {{"axis", 1}});
    }
    if (k == "Residual") return node("Add", {x, emit(n.children.at(0), x, scope)}, out);
    if (k == "Dense" || k == "SparseInputDense") {
      std::vector<std::string> inputs{x, initializer(n.path + ".weight")};
      if (n.flag("bias")) inputs.push_back(initializer(n.path + ".bias"));
      return node("Gemm", inputs, out, {{"transB", 1}});
    }
    if (k == "ReLU") return node("Relu", {x}, out);
    if (k == "Sigmoid") return node("Sigmoid", {x}, out);
    if (k == "Tanh") return node("Tanh", {x}, out);
    if (k == "LeakyReLU") return node("LeakyRelu", {x}, out, {}, {{"alpha", n.number("negative_slope")}});
    if (k == "ELU") return node("Elu", {x}, out, {}, {{"alpha", n.number("alpha")}});
    if (k == "BatchNorm")
      return node("BatchNormalization",
                  {x, initializer(n.path + ".weight"), initializer(n.path + ".bias"), initializer(n.path + ".running_mean"),
                   initializer(n.path + ".running_var")},
                  out, {}, {{"epsilon", n.number("eps")}});
    if (k == "LayerNorm")
      return node("LayerNormalization", {x, initializer(n.path + ".weight"), initializer(n.path + ".bias")}, out,
                  {{"axis", -1}}, {{"epsilon", n.number("eps")}});
    if (k == "Dropout") {
      if (n.flag("always"))
        throw config_error("export_onnx: '" + n.path + "' keeps dropout on in evaluation, which a deployed model cannot reproduce");
      return x;
    }
    if (k == "Identity" || k == "Input") return x;
    throw config_error("export_onnx: '" + n.path + "' is a " + k + " layer, which has no ONNX form in Strata (yet)");
  }

 private:
  static constexpr int element_type = std::is_same_v<T, double> ? onnx::TensorProto::DOUBLE : onnx::TensorProto::FLOAT;

  std::string node(const std::string& op, const std::vector<std::string>& inputs, const std::string& output,
                   const std::vector<std::pair<const char*, std::int64_t>>& ints = {},
                   const std::vector<std::pair<const char*, double>>& floats = {}) {
    onnx::NodeProto* n = graph_.add_node();
    n->set_op_type(op);
    n->set_name(output);
    for (const auto& i : inputs) n->add_input(i);
    n->add_output(output);
    for (const auto& [name, value] : ints) {
      onnx::AttributeProto* a = n->add_attribute();
      a->set_name(name);
      a->set_type(onnx::AttributeProto::INT);
      a->set_i(value);
    }
    for (const auto& [name, value] : floats) {
      onnx::AttributeProto* a = n->add_attribute();
      a->set_name(name);
      a->set_type(onnx::AttributeProto::FLOAT);
      a->set_f(static_cast<float>(value));
    }
    return output;
  }

  /// Features [begin, end) of every sample of `x`.
  std::string slice(const std::string& x, double begin, double end, const std::string& out) {
    const std::string starts = constant_int64(out + ".starts", static_cast<std::int64_t>(begin));
    const std::string ends = constant_int64(out + ".ends", static_cast<std::int64_t>(end));
    const std::string axes = constant_int64(out + ".axes", 1);
    return node("Slice", {x, starts, ends, axes}, out);
  }

  std::string constant_int64(const std::string& name, std::int64_t value) {
    onnx::TensorProto* t = graph_.add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::INT64);
    t->add_dims(1);
    t->add_int64_data(value);
    return name;
  }

  /// The model tensor `name` as an initializer (once, however often it is read): a weight
  /// matrix as rows x cols in row-major order, a one-column tensor as a vector.
  std::string initializer(const std::string& name) {
    if (!written_.insert(name).second) return name;
    const auto it = tensors_.find(name);
    if (it == tensors_.end()) throw config_error("export_onnx: the model has no tensor '" + name + "'");
    const host_matrix<T>& m = it->second;
    onnx::TensorProto* t = graph_.add_initializer();
    t->set_name(name);
    t->set_data_type(element_type);
    t->add_dims(m.rows());
    if (!exported_as_vector(name, m.cols(), root_kind_)) t->add_dims(m.cols());
    const Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> row_major = m;
    t->set_raw_data(std::string(reinterpret_cast<const char*>(row_major.data()), sizeof(T) * static_cast<std::size_t>(m.size())));
    return name;
  }

  onnx::GraphProto& graph_;
  const std::map<std::string, host_matrix<T>>& tensors_;
  std::string root_kind_;
  std::set<std::string> written_;
};

inline void describe_value(onnx::ValueInfoProto* v, const std::string& name, int element_type, Index width) {
  v->set_name(name);
  onnx::TypeProto_Tensor* t = v->mutable_type()->mutable_tensor_type();
  t->set_elem_type(element_type);
  t->mutable_shape()->add_dim()->set_dim_param("N");
  t->mutable_shape()->add_dim()->set_dim_value(width);
}

}  // namespace detail

/// The ONNX model of built `model`, serialised (see the file comment).
template <class Spec, class B>
std::string onnx_bytes(Model<Spec, B>& model, const onnx_options& options = {}) {
  using T = typename B::scalar;
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "ONNX export writes float or double models");
  const architecture_node tree = architecture_tree(model);
  std::map<std::string, host_matrix<T>> tensors;
  detail::for_each_named_tensor(model, "export_onnx", [&](const std::string& name, auto& m) { B::download(m, tensors[name]); });

  onnx::ModelProto proto;
  proto.set_ir_version(onnx_ir_version);
  proto.set_producer_name("Strata");
  proto.set_producer_version("0.1");
  if (!options.doc.empty()) proto.set_doc_string(options.doc);
  onnx::OperatorSetIdProto* opset = proto.add_opset_import();
  opset->set_domain("");
  opset->set_version(onnx_opset);
  onnx::GraphProto* graph = proto.mutable_graph();
  graph->set_name(options.graph_name);
  constexpr int element_type = std::is_same_v<T, double> ? onnx::TensorProto::DOUBLE : onnx::TensorProto::FLOAT;
  detail::describe_value(graph->add_input(), "input", element_type, model.input_width());
  detail::onnx_graph_builder<T> builder(*graph, tensors, Spec::kind);
  const std::string last = builder.emit(tree, "input", "");
  onnx::NodeProto* output = graph->add_node();  // names the result, whatever the last layer was
  output->set_op_type("Identity");
  output->set_name("prediction");
  output->add_input(last);
  output->add_output("prediction");
  detail::describe_value(graph->add_output(), "prediction", element_type, model.output_width());
  std::string bytes;
  if (!proto.SerializeToString(&bytes)) throw io_error("export_onnx: the model could not be serialised");
  return bytes;
}

/// Writes the ONNX model of built `model` to `path` (whole or not at all).
template <class Spec, class B>
void export_onnx(Model<Spec, B>& model, const std::string& path, const onnx_options& options = {}) {
  detail::write_bytes_atomically(path, onnx_bytes(model, options));
}

}  // namespace strata
