// Predictions with uncertainty: Monte-Carlo dropout and ensembles summarised per sample (mean,
// std, min, max), reproducible and independent of the batch size, and calibration scores that
// mean what they say.
#include <catch2/catch.hpp>

#include <strata/data/dataset.hpp>
#include <strata/inference/uncertainty.hpp>
#include <strata/strata.hpp>

#include "../support/eval_predictions.hpp"

using namespace strata;
using Catch::Matchers::Contains;

namespace {
MatrixDataset<float> inputs(Index n, Index width = 5) {
  const random_stream rng(3, purpose::data);
  matrix_f x(width, n), y(1, n);
  for (Index i = 0; i < x.size(); ++i) x.data()[i] = static_cast<float>(2 * rng.uniform(static_cast<std::uint64_t>(i)) - 1);
  for (Index j = 0; j < n; ++j) y(0, j) = x(0, j);
  return {x, y};
}
using Dropped = Sequential<Dense<16>, Tanh, Dropout, Dense<1>>;
Model<Dropped> dropped_model(double rate) {
  Model<Dropped> m(Dropped{Dense<16>{}, Tanh{}, Dropout{rate}, Dense<1>{}});
  m.build(5, 11);
  return m;
}
/// Evaluation-mode predictions, one forward pass.
matrix_d plain_predictions(Model<Dropped>& m, const MatrixDataset<float>& data) {
  return testing::eval_predictions(m, data).cast<double>();
}
}  // namespace

TEST_CASE("Monte-Carlo dropout: a spread around the evaluation-mode prediction, reproducible, any batch size") {
  const auto data = inputs(40);
  auto model = dropped_model(0.3);
  spread_options options;
  options.keep_passes = true;
  options.batch = 7;
  const prediction_spread s = mc_dropout_predict(model, data, 300, options);
  REQUIRE(s.count == 300);
  REQUIRE(s.mean.cols() == 40);
  REQUIRE(s.passes.size() == 300);
  CHECK((s.std.array() > 1e-3).all());  // dropout is on: the passes differ
  CHECK((s.min.array() <= s.mean.array()).all());
  CHECK((s.mean.array() <= s.max.array()).all());
  CHECK(s.targets == data.features().topRows(1).cast<double>());  // the dataset's targets, in order

  // The summaries are those of the kept passes (population standard deviation, as np.std).
  matrix_d mean = matrix_d::Zero(1, 40), sq = matrix_d::Zero(1, 40);
  for (const auto& p : s.passes) mean += p / 300.0;
  for (const auto& p : s.passes) sq += (p - mean).cwiseAbs2() / 300.0;
  CHECK((s.mean - mean).cwiseAbs().maxCoeff() < 1e-12);
  CHECK((s.std - sq.cwiseSqrt()).cwiseAbs().maxCoeff() < 1e-9);

  // Inverted dropout keeps every unit's expectation; behind the last hidden layer (linear from
  // there) the average of many passes approaches the evaluation-mode prediction.
  const matrix_d plain = plain_predictions(model, data);
  CHECK(((s.mean - plain).cwiseAbs().array() < 4 * s.std.array() / std::sqrt(300.0) + 1e-6).all());

  options.batch = 4096;
  options.keep_passes = false;
  const prediction_spread again = mc_dropout_predict(model, data, 300, options);
  // The same masks whatever the batch size: the passes agree to the GEMM's rounding (bit for bit
  // only where BLAS computes each column the same way at every batch size, which OpenBLAS's
  // small-matrix kernels on AVX-512 machines do not).
  CHECK((again.mean - s.mean).cwiseAbs().maxCoeff() < 1e-5);
  CHECK((again.std - s.std).cwiseAbs().maxCoeff() < 1e-5);
  CHECK(again.passes.empty());
  options.seed = 1;
  CHECK(mc_dropout_predict(model, data, 300, options).mean != s.mean);

  // The model's own evaluation is untouched: the next plain pass has no dropout.
  CHECK(plain_predictions(model, data) == plain);
}

TEST_CASE("Without dropout every Monte-Carlo pass is the plain prediction") {
  const auto data = inputs(10);
  auto model = dropped_model(0.0);
  const prediction_spread s = mc_dropout_predict(model, data, 5);
  CHECK(s.std.isZero(0.0));
  CHECK(s.mean == plain_predictions(model, data));
  CHECK(s.min == s.max);
}

TEST_CASE("An ensemble's spread is the spread of its members' predictions") {
  const auto data = inputs(25);
  std::vector<Model<Dropped>> models;
  for (std::uint64_t seed : {1, 2, 3}) {
    models.emplace_back(Dropped{Dense<16>{}, Tanh{}, Dropout{0.5}, Dense<1>{}});
    models.back().build(5, seed);
  }
  std::vector<Model<Dropped>*> members{&models[0], &models[1], &models[2]};
  const prediction_spread s = ensemble_predict(members, data);
  const matrix_d a = plain_predictions(models[0], data), b = plain_predictions(models[1], data),
                 c = plain_predictions(models[2], data);
  CHECK((s.mean - (a + b + c) / 3.0).cwiseAbs().maxCoeff() < 1e-12);
  CHECK(s.min == a.cwiseMin(b).cwiseMin(c));
  CHECK(s.max == a.cwiseMax(b).cwiseMax(c));
  const matrix_d m = (a + b + c) / 3.0;
  const matrix_d var = ((a - m).cwiseAbs2() + (b - m).cwiseAbs2() + (c - m).cwiseAbs2()) / 3.0;
  CHECK((s.std - var.cwiseSqrt()).cwiseAbs().maxCoeff() < 1e-9);

  const prediction_spread same = ensemble_predict(std::vector<Model<Dropped>*>{&models[0], &models[0]}, data);
  CHECK(same.std.isZero(0.0));
  CHECK_THROWS_WITH(ensemble_predict(std::vector<Model<Dropped>*>{}, data), Contains("no model"));
  CHECK_THROWS_WITH(mc_dropout_predict(models[0], data, 0), Contains("must be positive"));
  CHECK_THROWS_WITH(mc_dropout_predict(models[0], inputs(4, 6), 3), Contains("reads 5 features") && Contains("has 6"));
}

TEST_CASE("Streamed in pieces, members with their own inputs give what one call gives") {
  const auto data = inputs(30);
  auto model = dropped_model(0.3);
  spread_options options;
  const prediction_spread whole = mc_dropout_predict(model, data, 50, options);
  // The same samples in two pieces, each saying where it starts: the same masks, so the same
  // spread (to GEMM rounding: the pieces are multiplied separately).
  const auto piece = [&](Index first, Index n, Index said_first) {
    matrix_f x = data.features().middleCols(first, n), y = data.targets().middleCols(first, n);
    options.first_sample = said_first;
    return mc_dropout_predict(model, MatrixDataset<float>(x, y), 50, options);
  };
  const prediction_spread a = piece(0, 12, 0), b = piece(12, 18, 12);
  CHECK((a.mean - whole.mean.leftCols(12)).cwiseAbs().maxCoeff() < 1e-5);
  CHECK((b.std - whole.std.rightCols(18)).cwiseAbs().maxCoeff() < 1e-5);
  CHECK((piece(12, 18, 0).mean - whole.mean.rightCols(18)).cwiseAbs().maxCoeff() > 1e-3);  // other masks

  // A member that reads its own (here: doubled) features sees only those.
  auto other = dropped_model(0.3);
  matrix_f doubled = 2 * data.features();
  const MatrixDataset<float> twice(doubled, data.targets());
  const prediction_spread s = ensemble_predict(std::vector<Model<Dropped>*>{&model, &other},
                                               std::vector<const MatrixDataset<float>*>{&data, &twice});
  const matrix_d expected = (plain_predictions(model, data) + plain_predictions(other, twice)) / 2.0;
  CHECK((s.mean - expected).cwiseAbs().maxCoeff() < 1e-12);
  CHECK(s.targets == data.targets().cast<double>());
  const MatrixDataset<float> shorter = inputs(29);
  CHECK_THROWS_WITH(ensemble_predict(std::vector<Model<Dropped>*>{&model, &other},
                                     std::vector<const MatrixDataset<float>*>{&data, &shorter}),
                    Contains("reads 29 samples"));
}

TEST_CASE("Calibration: coverage of mean +- z std and how well std ranks the errors") {
  prediction_spread s;
  s.mean = matrix_d::Zero(1, 4);
  s.std.resize(1, 4);
  s.std << 1.0, 2.0, 3.0, 4.0;
  matrix_d targets(1, 4);
  targets << 0.5, -5.0, 5.5, 9.0;  // errors 0.5, 5, 5.5, 9 against 1.96 std = 1.96, 3.92, 5.88, 7.84
  calibration c = calibrate(s, targets);
  CHECK(c.coverage == 0.5);
  CHECK(c.spearman == Approx(1.0));  // larger std, larger error: perfectly ranked
  c = calibrate(s, targets, 1.2);
  CHECK(c.coverage == 0.25);
  targets << 9.0, 6.5, -5.0, 0.5;
  CHECK(calibrate(s, targets).spearman == Approx(-1.0));
  CHECK_THROWS_WITH(calibrate(s, matrix_d::Zero(1, 3)), Contains("targets are"));
  CHECK_THROWS_WITH(calibrate(s, targets, 0.0), Contains("z must be positive"));
}
