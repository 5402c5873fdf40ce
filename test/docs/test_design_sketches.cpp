// The code docs/design.md section 7 shows a reader who extends Strata (a layer, an optimizer, a
// strategy), compiled from the document itself and held to the checks that section asks for.
#include <catch2/catch.hpp>

#include <strata/strata.hpp>
#include <strata/data/dataset.hpp>
#include <strata/optim/optimizer.hpp>
#include <strata/train/trainer.hpp>

#include "../support/gradient_check.hpp"

namespace strata {
#include "design_sketches.hpp"  // PReLU, Lion and MicroBatched, as the document shows them
}  // namespace strata

using namespace strata;
using Catch::Matchers::Contains;

TEST_CASE("The document's PReLU layer: values, learned slopes, gradients") {
  testing::check_gradients(PReLU{}, 7, 4);

  Model<PReLU, EigenBackend<double>> model(PReLU{0.1});
  model.build(2);
  REQUIRE(model.parameters().size() == 1);
  CHECK(model.parameters()[0].name == "model.weight");
  matrix_d x(2, 2);
  x << 1.0, -2.0,
      -3.0, 4.0;
  const matrix_d y = model.forward(x);
  CHECK(y(0, 0) == 1.0);
  CHECK(y(0, 1) == Approx(-0.2));
  CHECK(y(1, 0) == Approx(-0.3));
  CHECK(y(1, 1) == 4.0);
}

TEST_CASE("The document's Lion optimizer: the sign of an interpolated momentum, groups honoured") {
  using B = EigenBackend<double>;
  Model<Dense<1>, B> model;
  model.build(2, 1);
  auto& params = model.parameters();
  auto slices = whole_slices(params);
  auto& w = *params[0].value;
  auto& g = *params[0].gradient;
  const matrix_d start = w;
  const auto moved = [&](Index k) { return w.data()[k] - start.data()[k]; };
  lion_optimizer<B> lion(Lion{}, slices);

  g.data()[0] = 1.0;
  g.data()[1] = -1.0;
  lion.step(slices, 0.1);  // no momentum yet: each weight moves by the rate against its gradient
  CHECK(moved(0) == Approx(-0.1));
  CHECK(moved(1) == Approx(0.1));
  CHECK(*params[1].value == matrix_d::Zero(1, 1));  // a zero gradient has no sign: the bias stays

  // The momentum is now 0.01 g: 0.9 * 0.01 - 0.1 * 0.05 > 0, so weight 0 keeps moving down
  // although its gradient turned; weight 1 (momentum -0.01, gradient 0) keeps moving up.
  g.data()[0] = -0.05;
  g.data()[1] = 0.0;
  lion.step(slices, 0.1);
  CHECK(moved(0) == Approx(-0.2));
  CHECK(moved(1) == Approx(0.2));

  SECTION("a frozen group is left alone, momentum included; a scaled group steps less") {
    std::vector<matrix_d> momentum_before;
    lion.for_each_state([&](const std::string&, auto& m) { momentum_before.emplace_back(m); });
    params[0].group.lr_scale = 0.0;
    refresh_groups(slices, params);
    lion.step(slices, 0.1);
    CHECK(moved(0) == Approx(-0.2));
    std::size_t k = 0;
    lion.for_each_state([&](const std::string&, auto& m) { CHECK(matrix_d(m) == momentum_before[k++]); });

    params[0].group.lr_scale = 0.5;
    refresh_groups(slices, params);
    lion.step(slices, 0.1);
    CHECK(moved(0) == Approx(-0.25));
  }
  SECTION("bad hyperparameters name the optimizer and the value") {
    Lion bad;
    bad.beta2 = 1.5;
    CHECK_THROWS_WITH(bad.validate(), Contains("Lion") && Contains("beta2") && Contains("1.5"));
  }
}

namespace {
/// y = x0 * x1 - x2: enough to train a small net for a few epochs.
MatrixDataset<float> product_data(Index n) {
  const random_stream rng(9, purpose::data);
  matrix_f x(3, n), y(1, n);
  for (Index j = 0; j < n; ++j) {
    for (Index i = 0; i < 3; ++i) x(i, j) = static_cast<float>(2 * rng.uniform(static_cast<std::uint64_t>(3 * j + i)) - 1);
    y(0, j) = x(0, j) * x(1, j) - x(2, j);
  }
  return {x, y};
}

template <class Strategy>
auto sketch_trainer(Strategy strategy) {
  using Net = Sequential<Dense<16>, Tanh, Dense<1>>;
  Model<Net> model;
  model.build(3, 7);
  trainer_options options;
  options.batch_size = 50;  // micro-batches of 12 and 13 samples
  options.seed = 7;
  return Trainer(std::move(model), MSE{}, Adam{1e-2}, strategy, options);
}

/// The largest difference between the two models' weights.
template <class A, class C>
double weight_distance(A& a, C& b) {
  double largest = 0.0;
  for (std::size_t k = 0; k < a.model().parameters().size(); ++k)
    largest = std::max<double>(largest, (*a.model().parameters()[k].value - *b.model().parameters()[k].value).cwiseAbs().maxCoeff());
  return largest;
}
}  // namespace

TEST_CASE("The document's MicroBatched strategy trains as Serial does, to rounding") {
  const auto data = product_data(300);
  auto serial = sketch_trainer(Serial{});
  auto micro = sketch_trainer(MicroBatched(4));
  const auto serial_history = serial.fit(data, 3);
  const auto micro_history = micro.fit(data, 3);
  CHECK(micro_history.back().train_loss < micro_history.front().train_loss);
  CHECK(micro_history.back().train_loss == Approx(serial_history.back().train_loss).epsilon(1e-4));
  CHECK(weight_distance(serial, micro) < 1e-4);

  // A checkpoint moves between the two strategies and training continues alike.
  auto resumed = sketch_trainer(Serial{});
  resumed.restore(micro.snapshot(), "the micro-batched snapshot", true);
  CHECK(resumed.epoch() == 3);
  CHECK(weight_distance(resumed, micro) == 0.0);
  resumed.fit(data, 4);
  micro.fit(data, 4);
  CHECK(weight_distance(resumed, micro) < 1e-4);

  CHECK_THROWS_WITH(MicroBatched(0), Contains("parts must be at least 1"));
}
