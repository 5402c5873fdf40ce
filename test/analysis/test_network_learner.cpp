// NetworkLearner: a network trained per learning-curve task to its best validation epoch. In a
// sweep its error falls with data, it stops within its epoch budget, and the scores are the same
// bit for bit however many jobs run at once (every job's math on one thread).
#include <catch2/catch.hpp>

#include <strata/analysis/network_learner.hpp>
#include <strata/models/hidden_stack.hpp>
#include <strata/optim/adam.hpp>
#include <strata/parallel/communicator.hpp>

#include "../support/small_studies.hpp"

using namespace strata;

namespace {
using SmallNet = Sequential<HiddenStack<1>, Dense<1>>;

LearningCurve<float> small_curve(Index concurrent) {
  learning_curve_options o;
  o.models = {"net", "twin"};
  o.folds = 5;
  o.splits = 3;
  o.sizes = {25, 75, 300};
  o.seed = 3;
  o.sweep.concurrent_jobs = concurrent;
  return LearningCurve<float>(generate_studies<float>(strata_test::small_studies("A", "B", "C")).data.study("A"), o);
}
}  // namespace

TEST_CASE("Networks trained per task: the error falls with data, the same with 1 and 3 jobs at once") {
  SerialCommunicator world;
  trainer_options training;
  training.batch_size = 16;
  const NetworkLearner<SmallNet, Adam> learner([] { return SmallNet{hidden_stack<1>(16, 0.0), Dense<1>{}}; }, Adam{1e-2}, training,
                                               fit_to_best_options{40, 5, 0.0, "loss", false, {}, std::nullopt});
  const auto one = small_curve(1).run(world, learner);
  REQUIRE(one.points.size() == 2 * 3 * 3 * 4);
  for (const auto& p : one.points) {
    CHECK(std::isfinite(p.score));
    CHECK(p.epochs >= 1);
    CHECK(p.epochs <= 40);
  }
  const curve_summary net = summarise_learning_curve(one.points, "net", "mae", {{}, 0, 0.95, 0.1, 1});
  CHECK(net.median.back() < net.median.front());
  const auto three = small_curve(3).run(world, learner);
  REQUIRE(three.points.size() == one.points.size());
  for (std::size_t i = 0; i < one.points.size(); ++i) {
    CHECK(three.points[i].score == one.points[i].score);
    CHECK(three.points[i].epochs == one.points[i].epochs);
  }
}

TEST_CASE("A plateau schedule must agree with the figure it watches") {
  trainer_options training;
  fit_to_best_options fitting{5, 2, 0.0, "loss", false, {}, ReduceLROnPlateau(plateau_mode::max)};
  const NetworkLearner<SmallNet, Adam> learner([] { return SmallNet{hidden_stack<1>(8, 0.0), Dense<1>{}}; }, Adam{1e-2}, training,
                                               fitting);
  const auto curve = small_curve(1);
  CHECK_THROWS_WITH(learner(curve.task("net", 0, 25), Serial{}), Catch::Matchers::Contains("disagree about 'loss'"));
}
