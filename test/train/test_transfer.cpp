// Transfer learning's pieces: the single-drug models, warm starts matched by name (with a
// replaced head, and clear refusals), the best-epoch model, gradual unfreezing and fit_to_best.
#include <catch2/catch.hpp>

#include <strata/data/dataset.hpp>
#include <strata/io/warm_start.hpp>
#include <strata/models/single_drug.hpp>
#include <strata/train/refinement.hpp>
#include <strata/train/trainer.hpp>

#include <cmath>
#include <filesystem>

using namespace strata;
using Catch::Matchers::Contains;

namespace {
/// y = sin(2 x0) x1 + 0.5 x2^2 + noise: enough noise that validation loss turns up eventually.
MatrixDataset<float> regression_data(Index n, std::uint64_t seed) {
  const random_stream rng(seed, purpose::data);
  matrix_f x(3, n), y(1, n);
  for (Index j = 0; j < n; ++j) {
    for (Index i = 0; i < 3; ++i) x(i, j) = static_cast<float>(2 * rng.uniform(static_cast<std::uint64_t>(3 * j + i)) - 1);
    y(0, j) = std::sin(2 * x(0, j)) * x(1, j) + 0.5f * x(2, j) * x(2, j) +
              0.3f * static_cast<float>(rng.normal(static_cast<std::uint64_t>(1000000 + j)));
  }
  return {x, y};
}

using Net = Sequential<Dense<>, ReLU, Dense<>, ReLU, Dense<>>;
Net make_net(Index hidden, Index out) { return Net{Dense<>{hidden}, ReLU{}, Dense<>{hidden}, ReLU{}, Dense<>{out}}; }

template <class ModelT>
std::vector<float> tensor_values(ModelT& model, const std::string& name) {
  for (auto& p : model.parameters())
    if (p.name == name) return {p.value->data(), p.value->data() + p.value->size()};
  FAIL("no tensor " << name);
  return {};
}

single_drug_options small_shape() { return {8, 12, 16, 0.1}; }
}  // namespace

TEST_CASE("The two single-drug networks: separate encoders or one input, five hidden layers each") {
  Model<TwoSubnetwork> two(make_two_subnetwork(small_shape()));
  two.build(20, 1);
  Model<Concatenated> concat(make_concatenated(small_shape()));
  concat.build(20, 1);
  const Index w = 16;
  CHECK(two.parameter_count() == (8 * w + w) + (w * w + w) + (12 * w + w) + (w * w + w) + (2 * w * w + w) + 2 * (w * w + w) + (w + 1));
  CHECK(concat.parameter_count() == (20 * w + w) + 4 * (w * w + w) + (w + 1));
  CHECK(two.output_width() == 1);
  CHECK(tensor_values(two, "model/0:Fork/0:Branch/1:Repeat/0:Sequential/0:Dense.weight").size() == static_cast<std::size_t>(8 * w));
  CHECK(tensor_values(two, "model/0:Fork/1:Branch/1:Repeat/0:Sequential/0:Dense.weight").size() == static_cast<std::size_t>(12 * w));
  // An input narrower than cell + drug features is refused at build time, naming the slice.
  Model<TwoSubnetwork> narrow(make_two_subnetwork(small_shape()));
  CHECK_THROWS_WITH(narrow.build(19, 1), Contains("Slice"));
  CHECK(to_string(parse_single_drug_network("two")) == std::string("two-subnetwork"));
  CHECK_THROWS_WITH(parse_single_drug_network("wide"), Contains("two-subnetwork or concatenated"));
}

TEST_CASE("A warm start copies tensors matched by name, and keeps a replaced head as initialised") {
  Model<TwoSubnetwork> source(make_two_subnetwork(small_shape()));
  source.build(20, 1);
  Model<TwoSubnetwork> target(make_two_subnetwork(small_shape()));
  target.build(20, 2);
  const std::string head = "model/2:Dense.weight", encoder = "model/0:Fork/1:Branch/1:Repeat/1:Sequential/0:Dense.weight";
  const auto initial_head = tensor_values(target, head);
  REQUIRE(initial_head != tensor_values(source, head));

  warm_start_options options;
  options.reinitialize = {"2:Dense"};
  const warm_start_report report = warm_start_from(target, source, options);
  CHECK(tensor_values(target, encoder) == tensor_values(source, encoder));
  CHECK(tensor_values(target, head) == initial_head);
  CHECK(report.reinitialized == std::vector<std::string>{"model/2:Dense.weight", "model/2:Dense.bias"});
  CHECK(report.loaded.size() + 2 == target.parameters().size());
  CHECK(report.missing.empty());
  CHECK(report.unexpected.empty());
  CHECK_THAT(report.summary(), Contains("reinitialised 2"));

  // Whole, through a file.
  const auto path = (std::filesystem::temp_directory_path() / "strata_warm_start.model").string();
  state_file file;
  write_model_state(file, source);
  file.write(path);
  warm_start(target, path, warm_start_options{{}, true});
  CHECK(tensor_values(target, head) == tensor_values(source, head));
  std::filesystem::remove(path);
}

TEST_CASE("A head of another width is replaced only when named; other architectures are refused") {
  Model<Net> source(make_net(8, 3));
  source.build(3, 1);
  Model<Net> target(make_net(8, 1));
  target.build(3, 2);
  const auto before = tensor_values(target, "model/0:Dense.weight");
  CHECK_THROWS_WITH(warm_start_from(target, source),
                    Contains("'model/4:Dense.weight' is 3x8 there, 1x8 here") && Contains("reinitialize"));
  CHECK(tensor_values(target, "model/0:Dense.weight") == before);  // a refused start changes nothing
  warm_start_options head;
  head.reinitialize = {"4:Dense"};
  const auto report = warm_start_from(target, source, head);
  CHECK(report.loaded.size() == 4);
  CHECK(tensor_values(target, "model/0:Dense.weight") == tensor_values(source, "model/0:Dense.weight"));

  // A model of another architecture shares no name: refused before anything changes.
  Model<Concatenated> other(make_concatenated(small_shape()));
  other.build(20, 1);
  Model<TwoSubnetwork> two(make_two_subnetwork(small_shape()));
  two.build(20, 1);
  CHECK_THROWS_WITH(warm_start_from(two, other), Contains("shares no tensor") && Contains("another architecture"));

  // Strict refuses a source that lacks some of the model's tensors.
  Model<Sequential<Dense<>, ReLU, Dense<>>> shallow(Sequential<Dense<>, ReLU, Dense<>>{Dense<>{8}, ReLU{}, Dense<>{8}});
  shallow.build(3, 1);
  const auto partial = warm_start_from(target, shallow);
  CHECK(partial.loaded.size() == 4);
  CHECK(partial.missing == std::vector<std::string>{"model/4:Dense.weight", "model/4:Dense.bias"});
  CHECK_THROWS_WITH(warm_start_from(target, shallow, warm_start_options{{}, true}), Contains("not this model's exact architecture"));
}

TEST_CASE("fit_to_best stops early and hands back the best validation epoch's model") {
  const auto train = regression_data(256, 1), validation = regression_data(256, 2);
  Model<Net> model(make_net(64, 1));
  model.build(3, 3);
  trainer_options options;
  options.batch_size = 16;
  Trainer<Net> trainer(std::move(model), MSE{}, Adam{1e-2}, Serial{}, options);
  fit_to_best_options fit;
  fit.max_epochs = 60;
  fit.patience = 2;
  const fit_to_best_outcome out = fit_to_best(trainer, train, validation, fit);
  INFO("ran " << out.epochs_run << " epochs, best " << out.best_epoch << " at " << out.best_value);
  CHECK(out.epochs_run < 60);  // early stopping ended it: noisy targets and a small set overfit
  CHECK(out.best_epoch < out.epochs_run - 1);
  double best = 1e300;
  for (const auto& r : out.history) best = std::min(best, r.validation.at("loss"));
  CHECK(out.best_value == best);
  CHECK(trainer.evaluate(validation).loss == out.best_value);  // the best model, not the last
}

TEST_CASE("Gradual unfreezing trains the head first and thaws the first layer at its epoch") {
  const auto train = regression_data(128, 1), validation = regression_data(64, 2);
  Model<Net> model(make_net(8, 1));
  model.build(3, 3);
  Trainer<Net> trainer(std::move(model), MSE{}, Adam{1e-2});
  const auto first = tensor_values(trainer.model(), "model/0:Dense.weight");
  const auto head = tensor_values(trainer.model(), "model/4:Dense.weight");
  trainer.add_callback(std::make_shared<GradualUnfreezing<Model<Net>>>(trainer.model(), std::vector<thaw_stage>{{2, "0:Dense"}}));
  trainer.fit(train, 2, &validation);
  CHECK(tensor_values(trainer.model(), "model/0:Dense.weight") == first);
  CHECK(tensor_values(trainer.model(), "model/4:Dense.weight") != head);
  trainer.fit(train, 3, &validation);
  CHECK(tensor_values(trainer.model(), "model/0:Dense.weight") != first);
  CHECK_THROWS_WITH(GradualUnfreezing<Model<Net>>(trainer.model(), {{-1, "0:Dense"}}), Contains("epoch -1"));
}
