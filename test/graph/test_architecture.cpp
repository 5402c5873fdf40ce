// The architecture description: every layer kind appears with its path (the prefix of its
// tensors' names) and its configuration, composites with their children in build order; and a
// model, its tensors and predictions written for test/graph/rebuild_check.py, which rebuilds
// the model in NumPy from the JSON and the .npz alone.
#include <catch2/catch.hpp>

#include <strata/graph/architecture.hpp>
#include <strata/io/model_npz.hpp>
#include <strata/models/combo.hpp>
#include <strata/strata.hpp>

#ifdef STRATA_TEST_ONNX
#include <strata/io/onnx.hpp>
#endif

#include <cstdlib>
#include <fstream>
#include <set>
#include <string>

using namespace strata;
using Catch::Matchers::Contains;

namespace {
/// Every layer kind and composite, small: what the NumPy rebuild must get right.
using Everything = Sequential<Fork<Branch<Sequential<Dense<6>, LeakyReLU, BatchNorm>>,
                                   Shared<Sequential<Dense<4>, ELU, Dropout>, Slice<>, Slice<>>>,
                              Residual<Sequential<Dense<14>, Sigmoid>>, LayerNorm, Repeat<2, Sequential<Dense<5>, Tanh>>,
                              Identity, Dense<2>>;

Model<Everything> everything() {
  Model<Everything> m(Everything{
      Fork<Branch<Sequential<Dense<6>, LeakyReLU, BatchNorm>>, Shared<Sequential<Dense<4>, ELU, Dropout>, Slice<>, Slice<>>>{
          Branch<Sequential<Dense<6>, LeakyReLU, BatchNorm>>{Slice<>{0, 3},
                                                              Sequential<Dense<6>, LeakyReLU, BatchNorm>{Dense<6>{}, LeakyReLU{0.2}, BatchNorm{}}},
          Shared<Sequential<Dense<4>, ELU, Dropout>, Slice<>, Slice<>>{
              Sequential<Dense<4>, ELU, Dropout>{Dense<4>{}, ELU{0.5}, Dropout{0.25}}, Slice<>{3, 6}, Slice<>{6, 9}}},
      Residual<Sequential<Dense<14>, Sigmoid>>{}, LayerNorm{}, Repeat<2, Sequential<Dense<5>, Tanh>>{}, Identity{}, Dense<2>{}});
  m.build(9, 4);
  return m;
}
}  // namespace

TEST_CASE("The architecture names every layer with its path and configuration") {
  auto model = everything();
  const std::string json = describe_architecture(model);
  CHECK(json.rfind("{\"format\": \"strata-architecture\", \"version\": 1, \"input_width\": 9, \"output_width\": 2", 0) == 0);
  for (const char* part :
       {"{\"kind\": \"Sequential\", \"path\": \"model\", \"children\": [",
        "{\"kind\": \"Branch\", \"path\": \"model/0:Fork/0:Branch\", \"children\": [",
        "{\"kind\": \"Slice\", \"path\": \"model/0:Fork/0:Branch/0:Slice\", \"begin\": 0, \"end\": 3}",
        "{\"kind\": \"Dense\", \"path\": \"model/0:Fork/0:Branch/1:Sequential/0:Dense\", \"width\": 6, \"bias\": true}",
        "{\"kind\": \"LeakyReLU\", \"path\": \"model/0:Fork/0:Branch/1:Sequential/1:LeakyReLU\", \"negative_slope\": 0.20000000000000001}",
        "\"kind\": \"BatchNorm\", \"path\": \"model/0:Fork/0:Branch/1:Sequential/2:BatchNorm\", \"eps\": 1.0000000000000001e-05, \"momentum\": 0.10000000000000001}",
        "{\"kind\": \"Shared\", \"path\": \"model/0:Fork/1:Shared\", \"begins\": [3, 6], \"ends\": [6, 9], \"children\": [",
        "\"kind\": \"ELU\", \"path\": \"model/0:Fork/1:Shared/0:Sequential/1:ELU\", \"alpha\": 0.5}",
        "\"kind\": \"Dropout\", \"path\": \"model/0:Fork/1:Shared/0:Sequential/2:Dropout\", \"rate\": 0.25, \"always\": false}",
        "{\"kind\": \"Residual\", \"path\": \"model/1:Residual\", \"children\": [",
        "{\"kind\": \"LayerNorm\", \"path\": \"model/2:LayerNorm\", \"eps\": 1.0000000000000001e-05}",
        "{\"kind\": \"Sequential\", \"path\": \"model/3:Repeat/1:Sequential\", \"children\": [",
        "{\"kind\": \"Identity\", \"path\": \"model/4:Identity\"}",
        "{\"kind\": \"Dense\", \"path\": \"model/5:Dense\", \"width\": 2, \"bias\": true}"})
    CHECK_THAT(json, Contains(part));
  // Every tensor's name is a described path plus its own name.
  for (const auto& p : model.parameters()) CHECK_THAT(json, Contains("\"" + p.name.substr(0, p.name.rfind('.')) + "\""));
  for (const auto& b : model.buffers()) CHECK_THAT(json, Contains("\"" + b.name.substr(0, b.name.rfind('.')) + "\""));

  Model<Combo> combo(make_combo({5, 7, 8, 0.1}));
  combo.build(19, 1);
  CHECK_THAT(describe_architecture(combo), Contains("\"begins\": [5, 12], \"ends\": [12, 19]"));
  Model<Dense<3>> unbuilt;
  CHECK_THROWS_WITH(describe_architecture(unbuilt), Contains("build the model first"));
}

TEST_CASE("A model leaves as JSON and .npz, with inputs and predictions for the NumPy rebuild") {
  const char* folder = std::getenv("STRATA_ARCHITECTURE_OUT");
  if (folder == nullptr) return;  // run by CTest with a folder, before check_architecture.py reads it
  auto model = everything();
  // Running statistics away from their initial values, so the rebuild must read them.
  const random_stream rng(8, purpose::data);
  matrix_f x(9, 64);
  for (Index i = 0; i < x.size(); ++i) x.data()[i] = static_cast<float>(2 * rng.uniform(static_cast<std::uint64_t>(i)) - 1);
  pass_info train;
  for (int step = 0; step < 3; ++step) model.forward(x, train);
  pass_info eval;
  eval.phase = mode::eval;
  const matrix_f predictions = model.forward(x, eval);

  const std::string base = std::string(folder) + "/everything";
  write_architecture(model, base + ".json");
  save_npz(model, base + ".npz");
  npz_archive io;
  io.add("inputs", x);
  io.add("predictions", predictions);
  io.write(base + ".io.npz");
#ifdef STRATA_TEST_ONNX
  export_onnx(model, base + ".onnx");
#endif
}

TEST_CASE("Tensors written back by PyTorch load into the model and predict the same") {
  const char* folder = std::getenv("STRATA_ARCHITECTURE_OUT");
  if (folder == nullptr) return;  // run by CTest after rebuild_check.py (torch) wrote from_torch.npz
  const std::string from_torch = std::string(folder) + "/from_torch.npz";
  if (!std::ifstream(from_torch)) {
    WARN("no " << from_torch << " (PyTorch is not installed): nothing to check");
    return;
  }
  auto model = everything();  // fresh weights and running statistics, all replaced by the import
  const npz_import_report report = load_npz(model, from_torch);
  CHECK(report.loaded.size() == model.parameters().size() + model.buffers().size());
  const npz_archive io = npz_archive::read(std::string(folder) + "/everything.io.npz");
  const npy_array& x = io.arrays.at("inputs");
  const npy_array& expected = io.arrays.at("predictions");
  matrix_f inputs(x.rows(), x.cols());
  for (Index r = 0; r < inputs.rows(); ++r)
    for (Index c = 0; c < inputs.cols(); ++c) inputs(r, c) = static_cast<float>(x.values[static_cast<std::size_t>(r * x.cols() + c)]);
  pass_info eval;
  eval.phase = mode::eval;
  const matrix_f predictions = model.forward(inputs, eval);
  for (Index r = 0; r < predictions.rows(); ++r)
    for (Index c = 0; c < predictions.cols(); ++c)
      CHECK(predictions(r, c) == static_cast<float>(expected.values[static_cast<std::size_t>(r * expected.cols() + c)]));
}

#ifdef STRATA_TEST_ONNX
TEST_CASE("ONNX export: opset 17, one initializer per tensor, the layer tree as operators") {
  auto model = everything();
  onnx::ModelProto proto;
  REQUIRE(proto.ParseFromString(onnx_bytes(model, {"everything", "a test model"})));
  CHECK(proto.ir_version() == 8);
  REQUIRE(proto.opset_import_size() == 1);
  CHECK(proto.opset_import(0).version() == 17);
  CHECK(proto.doc_string() == "a test model");
  const onnx::GraphProto& g = proto.graph();
  CHECK(g.input(0).name() == "input");
  CHECK(g.input(0).type().tensor_type().shape().dim(1).dim_value() == 9);
  CHECK(g.output(0).name() == "prediction");
  CHECK(g.output(0).type().tensor_type().shape().dim(1).dim_value() == 2);

  std::multiset<std::string> ops;
  for (const auto& n : g.node()) ops.insert(n.op_type());
  // 7 dense layers, the shared encoder applied twice; 1 + 2 slices; the fork's and the shared
  // network's concatenations; dropout and identity leave nothing.
  CHECK(ops.count("Gemm") == 7);
  CHECK(ops.count("Slice") == 3);
  CHECK(ops.count("Concat") == 2);
  CHECK(ops.count("Elu") == 2);
  for (const char* op : {"LeakyRelu", "BatchNormalization", "Add", "Sigmoid", "LayerNormalization", "Identity"})
    CHECK(ops.count(op) == 1);
  CHECK(ops.count("Tanh") == 2);
  CHECK(ops.count("Dropout") == 0);

  // Every model tensor once, under its Strata name: the shared encoder's weights are not copied.
  std::set<std::string> names;
  for (const auto& t : g.initializer()) CHECK(names.insert(t.name()).second);
  for (const auto& p : model.parameters()) CHECK(names.count(p.name) == 1);
  for (const auto& b : model.buffers()) CHECK(names.count(b.name) == 1);
  for (const auto& t : g.initializer())
    if (t.name() == "model/5:Dense.weight") CHECK((t.dims_size() == 2 && t.dims(0) == 2 && t.dims(1) == 5));

  using Always = Sequential<Dense<3>, Dropout>;
  Model<Always> always(Always{Dense<3>{}, Dropout{0.5, Dropout::when::always}});
  always.build(4, 1);
  CHECK_THROWS_WITH(onnx_bytes(always), Contains("keeps dropout on in evaluation"));
}
#endif
