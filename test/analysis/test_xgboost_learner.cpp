// The boosted-trees learner (XGBoost): it learns (beats predicting the training mean), stops
// early at its best round, gives the same trees wherever and however often it runs, and runs
// as a learning curve's learner beside nothing else.
#include <catch2/catch.hpp>

#include <strata/analysis/xgboost_learner.hpp>
#include <strata/parallel/communicator.hpp>
#include <strata/parallel/serial.hpp>

#include "../support/small_studies.hpp"

using namespace strata;
using Catch::Matchers::Contains;

namespace {
LearningCurve<float> small_curve(Index concurrent) {
  learning_curve_options o;
  o.models = {"GBT"};
  o.folds = 5;
  o.splits = 2;
  o.sizes = {40, 100, 300};
  o.sweep.concurrent_jobs = concurrent;
  return LearningCurve<float>(generate_studies<float>(strata_test::small_studies("A", "B", "C")).data.study("A"), o);
}
}  // namespace

TEST_CASE("Boosted trees learn, stop at their best round and are reproducible") {
  const auto curve = small_curve(1);
  const auto task = curve.task("GBT", 0, 300);
  xgboost_options settings;
  settings.max_rounds = 200;
  settings.patience = 10;
  const XGBoostLearner trees(settings);
  const curve_outcome a = trees(task, Serial{});
  REQUIRE(a.predictions.cols() == static_cast<Index>(task.test.size()));
  CHECK(a.epochs >= 1);
  CHECK(a.epochs < 200);
  double mean = 0.0;
  for (const Index i : task.train) mean += task.data->tuples[static_cast<std::size_t>(i)].response / static_cast<double>(task.train.size());
  double model_error = 0.0, mean_error = 0.0;
  for (std::size_t k = 0; k < task.test.size(); ++k) {
    const double y = task.data->tuples[static_cast<std::size_t>(task.test[k])].response;
    model_error += std::abs(a.predictions(0, static_cast<Index>(k)) - y);
    mean_error += std::abs(mean - y);
  }
  CHECK(model_error < 0.9 * mean_error);
  const curve_outcome b = trees(task, Serial{});
  CHECK(b.epochs == a.epochs);
  CHECK(b.predictions == a.predictions);
  CHECK_THROWS_WITH(XGBoostLearner(xgboost_options{0, 20, 0.1, 6, 1.0, 0.5, 1.0, 1.0}), Contains("invalid settings"));
}

TEST_CASE("Boosted trees in a learning curve: the same scores with 1 and 2 jobs at a time") {
  SerialCommunicator world;
  const XGBoostLearner trees;
  const auto one = small_curve(1).run(world, trees);
  const auto two = small_curve(2).run(world, trees);
  REQUIRE(one.points.size() == 2 * 3 * 4);
  for (std::size_t i = 0; i < one.points.size(); ++i) CHECK(two.points[i].score == one.points[i].score);
}
