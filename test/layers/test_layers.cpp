// Every layer: finite-difference gradients, forward values checked by hand, and the behaviour
// each layer promises (inverted dropout, evaluation mode, running statistics, initialisers).
#include <catch2/catch.hpp>

#include <strata/layers/activation.hpp>
#include <strata/layers/batch_norm.hpp>
#include <strata/layers/dense.hpp>
#include <strata/layers/dropout.hpp>
#include <strata/layers/identity.hpp>
#include <strata/layers/layer_norm.hpp>

#include "../support/gradient_check.hpp"

using namespace strata;
using strata::testing::check_gradients;
using strata::testing::random_matrix;

TEST_CASE("Gradients of every layer match finite differences") {
  SECTION("Dense") { check_gradients(Dense<>{5}, 4, 3); }
  SECTION("Dense without bias, Glorot init") { check_gradients(Dense<>{3, Init::glorot_uniform, false}, 6, 2); }
  SECTION("ReLU") { check_gradients(ReLU{}, 7, 4); }
  SECTION("LeakyReLU") { check_gradients(LeakyReLU{0.2}, 7, 4); }
  SECTION("ELU") { check_gradients(ELU{0.7}, 7, 4); }
  SECTION("Sigmoid") { check_gradients(Sigmoid{}, 7, 4); }
  SECTION("Tanh") { check_gradients(Tanh{}, 7, 4); }
  SECTION("Dropout in training (the mask is fixed within a step)") { check_gradients(Dropout{0.3}, 6, 5); }
  SECTION("Identity") { check_gradients(Identity{}, 3, 2); }
  SECTION("BatchNorm in training") { check_gradients(BatchNorm{}, 4, 6); }
  SECTION("BatchNorm in evaluation") {
    strata::testing::gradient_check_options eval;
    eval.phase = mode::eval;
    check_gradients(BatchNorm{}, 4, 6, 1, eval);
  }
  SECTION("LayerNorm") { check_gradients(LayerNorm{}, 5, 3); }
}

TEST_CASE("Dense computes W x + b") {
  Model<Dense<2>, EigenBackend<double>> model;
  model.build(3, 9);
  auto& params = model.parameters();
  REQUIRE(params.size() == 2);
  CHECK(params[0].name == "model.weight");
  CHECK(params[1].name == "model.bias");
  *params[0].value << 1, 2, 3, 4, 5, 6;
  *params[1].value << 0.5, -1;
  matrix_d x(3, 1);
  x << 1, 0, -1;
  const matrix_d& y = model.forward(x);
  CHECK(y(0, 0) == Approx(1 - 3 + 0.5));
  CHECK(y(1, 0) == Approx(4 - 6 - 1));
}

TEST_CASE("Initialisers draw from the documented distributions") {
  const Index fan_in = 400, fan_out = 300;
  auto draw = [&](Init init) {
    EigenBackend<double>::matrix w(fan_out, fan_in);
    initialize<EigenBackend<double>>(w, init, random_stream(5, purpose::initialization, 1));
    return w;
  };
  const auto std_of = [](const matrix_d& w) {
    const double mean = w.mean();
    return std::sqrt((w.array() - mean).square().mean());
  };
  CHECK(std_of(draw(Init::he_normal)) == Approx(std::sqrt(2.0 / fan_in)).epsilon(0.01));
  const matrix_d he_uniform = draw(Init::he_uniform);
  CHECK(he_uniform.cwiseAbs().maxCoeff() <= std::sqrt(6.0 / fan_in));
  CHECK(std_of(he_uniform) == Approx(std::sqrt(2.0 / fan_in)).epsilon(0.01));
  const matrix_d glorot = draw(Init::glorot_uniform);
  CHECK(glorot.cwiseAbs().maxCoeff() <= std::sqrt(6.0 / (fan_in + fan_out)));
  CHECK(std_of(glorot) == Approx(std::sqrt(2.0 / (fan_in + fan_out))).epsilon(0.01));
  CHECK(draw(Init::zeros).cwiseAbs().maxCoeff() == 0.0);
}

TEST_CASE("Dropout is inverted, off in evaluation, and reproducible per sample") {
  Model<Dropout, EigenBackend<double>> model(Dropout{0.25});
  model.build(200, 3);
  const matrix_d x = matrix_d::Ones(200, 100);
  pass_info train;
  train.step = 1;

  const matrix_d y = model.forward(x, train);
  const double dropped = static_cast<double>((y.array() == 0.0).count()) / static_cast<double>(y.size());
  CHECK(dropped == Approx(0.25).margin(0.01));
  const double keep_scale = 1.0 / 0.75;
  CHECK(((y.array() == 0.0) || ((y.array() - keep_scale).abs() < 1e-12)).all());
  CHECK(y.mean() == Approx(1.0).margin(0.02));

  SECTION("evaluation is the identity") {
    pass_info eval;
    eval.phase = mode::eval;
    CHECK(model.forward(x, eval) == x);
  }
  SECTION("a new step draws a new mask") {
    pass_info next = train;
    next.step = 2;
    CHECK(model.forward(x, next) != y);
  }
  SECTION("the mask of a sample does not depend on how the batch is split") {
    pass_info second_half = train;
    second_half.first_sample = 60;
    const matrix_d part = x.middleCols(60, 40);
    CHECK(model.forward(part, second_half) == y.middleCols(60, 40));
  }
  SECTION("permanent (Monte Carlo) dropout stays active in evaluation") {
    Model<Dropout, EigenBackend<double>> mc(Dropout{0.25, Dropout::when::always});
    mc.build(200, 3);
    pass_info eval;
    eval.phase = mode::eval;
    CHECK((mc.forward(x, eval).array() == 0.0).count() > 0);
  }
  SECTION("rows share random numbers four at a time; rows left over share the last block") {
    Model<Dropout, EigenBackend<double>> odd(Dropout{0.25});
    odd.build(201, 3);
    const matrix_d ones = matrix_d::Ones(201, 100);
    const matrix_d z = odd.forward(ones, train);
    CHECK(static_cast<double>((z.array() == 0.0).count()) / static_cast<double>(z.size()) == Approx(0.25).margin(0.01));
    const auto last_dropped = (z.row(200).array() == 0.0).count();
    CHECK(last_dropped > 10);  // about 25 of 100
    CHECK(last_dropped < 45);
    // The four rows of a block are not copies of each other.
    for (Index r = 1; r < 4; ++r) CHECK(((z.row(0).array() == 0.0) != (z.row(r).array() == 0.0)).count() > 0);
    pass_info second_half = train;
    second_half.first_sample = 60;
    CHECK(odd.forward(ones.middleCols(60, 40), second_half) == z.middleCols(60, 40));
  }
  SECTION("a rate outside [0, 1) is refused at build time") {
    Model<Dropout, EigenBackend<double>> bad(Dropout{1.0});
    CHECK_THROWS_AS(bad.build(4, 1), config_error);
  }
}

TEST_CASE("BatchNorm normalises batches in training and uses running statistics in evaluation") {
  Model<BatchNorm, EigenBackend<double>> model;
  model.build(3, 1);
  matrix_d x = random_matrix(3, 50, 8) * 4.0;
  x.array() += 2.0;
  const matrix_d y = model.forward(x);
  for (Index i = 0; i < 3; ++i) {
    CHECK(y.row(i).mean() == Approx(0.0).margin(1e-12));
    CHECK((y.row(i).array().square().mean()) == Approx(1.0).epsilon(1e-3));
  }
  auto& buffers = model.buffers();
  REQUIRE(buffers.size() == 2);
  CHECK(buffers[0].name == "model.running_mean");
  // One step of momentum 0.1 from a zero mean.
  CHECK((*buffers[0].value)(0, 0) == Approx(0.1 * x.row(0).mean()));
  pass_info eval;
  eval.phase = mode::eval;
  const matrix_d z = model.forward(x, eval);
  const double expected = (x(1, 0) - (*buffers[0].value)(1, 0)) / std::sqrt((*buffers[1].value)(1, 0) + 1e-5);
  CHECK(z(1, 0) == Approx(expected));
}

TEST_CASE("LayerNorm normalises each sample over its features") {
  Model<LayerNorm, EigenBackend<double>> model;
  model.build(6, 1);
  const matrix_d y = model.forward(random_matrix(6, 4, 3) * 10.0);
  for (Index j = 0; j < 4; ++j) {
    CHECK(y.col(j).mean() == Approx(0.0).margin(1e-12));
    CHECK(y.col(j).array().square().mean() == Approx(1.0).epsilon(1e-5));
  }
}
