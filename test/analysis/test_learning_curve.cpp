// Learning curves: the sizes, the splits (fixed test and validation sets, nested training sets),
// the sweep's scores (one per model, split, size and metric; the same however many jobs run at
// once; a rerun trains nothing twice), the summaries (medians, fit, bootstrap intervals,
// predictions) and the tidy CSV, and every refusal. The sweeps here use a learner without
// training (test_network_learner.cpp trains networks), so that this test stays cheap to build
// under the sanitizers.
#include <catch2/catch.hpp>

#include <strata/analysis/learning_curve.hpp>
#include <strata/parallel/communicator.hpp>

#include "../support/small_studies.hpp"

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

using namespace strata;
using Catch::Matchers::Contains;

namespace {

/// The large study of the small synthetic set: 500 pairs of 30 cells and 20 drugs.
drug_response_data<float> study() {
  static const auto data = generate_studies<float>(strata_test::small_studies("A", "B", "C")).data.study("A");
  return data;
}

learning_curve_options options(std::vector<Index> sizes, std::vector<std::string> models = {"net"}) {
  learning_curve_options o;
  o.models = std::move(models);
  o.folds = 5;
  o.splits = 3;
  o.sizes = std::move(sizes);
  o.seed = 3;
  return o;
}

/// A learner without training: each test pair is predicted by the mean response of the training
/// pairs with its drug (the training mean for drugs it has not seen). More data, better means.
/// Counts how many tasks it learned.
struct drug_means {
  std::atomic<int>* trained = nullptr;
  template <class Strategy>
  curve_outcome operator()(const curve_task<float>& task, Strategy) const {
    if (trained) ++*trained;
    std::map<std::int32_t, std::pair<double, double>> by_drug;  // sum, count
    double all = 0.0;
    for (const Index i : task.train) {
      const response_tuple& t = task.data->tuples[static_cast<std::size_t>(i)];
      by_drug[t.drug1].first += t.response;
      by_drug[t.drug1].second += 1.0;
      all += t.response / static_cast<double>(task.train.size());
    }
    curve_outcome out;
    out.predictions.resize(1, static_cast<Index>(task.test.size()));
    for (std::size_t k = 0; k < task.test.size(); ++k) {
      const auto it = by_drug.find(task.data->tuples[static_cast<std::size_t>(task.test[k])].drug1);
      out.predictions(0, static_cast<Index>(k)) = static_cast<float>(it == by_drug.end() ? all : it->second.first / it->second.second);
    }
    out.epochs = 1;
    return out;
  }
};

bool contains_all(const std::vector<Index>& big, const std::vector<Index>& small) {
  return std::includes(big.begin(), big.end(), small.begin(), small.end());
}

}  // namespace

TEST_CASE("Sizes: powers of two up to the largest, or evenly spaced in log") {
  CHECK(log2_sizes(100, 1000) == std::vector<Index>{100, 128, 256, 512, 1000});
  CHECK(log2_sizes(128, 1024) == std::vector<Index>{128, 256, 512, 1024});
  CHECK(geometric_sizes(10, 1000, 3) == std::vector<Index>{10, 100, 1000});
  CHECK(geometric_sizes(100, 51200, 10).size() == 10);
  CHECK_THROWS_WITH(log2_sizes(0, 10), Contains("1 <= smallest < largest"));
  CHECK_THROWS_WITH(geometric_sizes(10, 12, 5), Contains("not all different once rounded"));
}

TEST_CASE("Every split has its own fixed test and validation sets and nested training sets") {
  for (const auto scheme : {split_scheme::random, split_scheme::cell_blind}) {
    auto o = options({20, 60, 180});
    o.scheme = scheme;
    const LearningCurve<float> curve(study(), o);
    std::set<Index> tested;
    for (Index s = 0; s < 3; ++s) {
      const auto small = curve.task("net", s, 20), mid = curve.task("net", s, 60), large = curve.task("net", s, 180);
      CHECK(small.train.size() == 20);
      CHECK(large.train.size() == 180);
      CHECK(contains_all(mid.train, small.train));
      CHECK(contains_all(large.train, mid.train));
      CHECK(contains_all(curve.split_rows(s).train, large.train));
      CHECK(small.test == large.test);
      CHECK(small.validation == large.validation);
      CHECK(small.seed != large.seed);
      for (const Index i : small.test) CHECK(tested.insert(i).second);  // test sets of different splits are disjoint
      if (scheme == split_scheme::cell_blind) {
        std::set<std::int32_t> test_cells;
        for (const Index i : large.test) test_cells.insert(study().tuples[static_cast<std::size_t>(i)].cell);
        for (const Index i : large.train) CHECK(test_cells.count(study().tuples[static_cast<std::size_t>(i)].cell) == 0);
      }
      // Standardised by the training set's own cells: each feature has mean 0 over them.
      std::set<std::int32_t> train_cells;
      for (const Index i : small.train) train_cells.insert(study().tuples[static_cast<std::size_t>(i)].cell);
      const auto& features = small.data->cells.features();
      for (Index j = 0; j < small.data->cells.width(); ++j) {
        double mean = 0.0;
        for (const auto c : train_cells) mean += features(j, c) / static_cast<double>(train_cells.size());
        CHECK(mean == Approx(0.0).margin(1e-5));
      }
    }
    CHECK(curve.task("net", 1, 60).train == curve.task("other", 1, 60).train);  // models see the same data
  }
}

TEST_CASE("Refused before training: sizes the data cannot give, too few sizes, bad names") {
  CHECK_THROWS_WITH(LearningCurve<float>(study(), options({20, 60, 400})),
                    Contains("the largest size, 400, is larger than split") && Contains("training pool of"));
  CHECK_THROWS_WITH(LearningCurve<float>(study(), options({20, 60})), Contains("needs at least 3"));
  CHECK_THROWS_WITH(LearningCurve<float>(study(), options({20, 60, 40})), Contains("ascending"));
  CHECK_THROWS_WITH(LearningCurve<float>(study(), options({20, 40, 60}, {"a/b"})), Contains("must be letters"));
  CHECK_THROWS_WITH(LearningCurve<float>(study(), options({20, 40, 60}, {"a", "a"})), Contains("listed twice"));
  CHECK_THROWS_WITH(LearningCurve<float>(study(), options({20, 40, 60}, {})), Contains("no model"));
  auto o = options({20, 40, 60});
  o.splits = 6;
  CHECK_THROWS_WITH(LearningCurve<float>(study(), o), Contains("splits must be in [1, 5]"));
}

TEST_CASE("A sweep scores every model, split and size; the error falls with data") {
  SerialCommunicator world;
  auto o = options({25, 75, 300}, {"means", "twin"});
  std::atomic<int> trained{0};
  const drug_means learner{&trained};
  o.sweep.concurrent_jobs = 1;
  const auto one = LearningCurve<float>(study(), o).run(world, learner);
  CHECK(trained == 18);
  REQUIRE(one.points.size() == 2 * 3 * 3 * 4);
  CHECK(one.jobs == 18);
  // Model by model, split by split, size by size, metric by metric.
  CHECK(one.points[0].model == "means");
  CHECK(one.points[4].size == 75);
  CHECK(one.points[12].split == 1);
  CHECK(one.points[36].model == "twin");
  for (const auto& p : one.points) {
    CHECK(std::isfinite(p.score));
    CHECK(p.epochs == 1);
    CHECK(p.seconds >= 0.0);
  }
  const curve_summary means = summarise_learning_curve(one.points, "means", "mae", {{}, 0, 0.95, 0.1, 1});
  REQUIRE(means.median.size() == 3);
  CHECK(means.splits == 3);
  CHECK(means.median.back() < means.median.front());  // more data, lower error
  for (std::size_t k = 0; k < 3; ++k) CHECK((means.low[k] <= means.median[k] && means.median[k] <= means.high[k]));

  // Three jobs at once on threads: every score where it belongs.
  o.sweep.concurrent_jobs = 3;
  const auto three = LearningCurve<float>(study(), o).run(world, learner);
  REQUIRE(three.points.size() == one.points.size());
  for (std::size_t i = 0; i < one.points.size(); ++i) CHECK(three.points[i].score == one.points[i].score);
}

TEST_CASE("With a work directory a rerun trains nothing twice and refuses other settings") {
  SerialCommunicator world;
  const std::string dir = (std::filesystem::temp_directory_path() / "strata_learning_curve").string();
  std::filesystem::remove_all(dir);
  auto o = options({25, 50, 100});
  o.sweep.work_directory = dir;
  std::atomic<int> trained{0};
  const auto first = LearningCurve<float>(study(), o).run(world, drug_means{&trained});
  CHECK(trained == 9);
  std::filesystem::remove(dir + "/net-split1-size50.job");
  const auto again = LearningCurve<float>(study(), o).run(world, drug_means{&trained});
  CHECK(trained == 10);
  CHECK(again.resumed == 8);
  for (std::size_t i = 0; i < first.points.size(); ++i) CHECK(again.points[i].score == first.points[i].score);
  o.learner_settings = "width 32";
  CHECK_THROWS_WITH(LearningCurve<float>(study(), o).run(world, drug_means{&trained}), Contains("different sweep"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("A learner's bad predictions are errors that name the job") {
  SerialCommunicator world;
  const auto o = options({20, 40, 80});
  const auto nan_learner = [](const curve_task<float>& t, auto) {
    curve_outcome out;
    out.predictions = host_matrix<float>::Constant(1, static_cast<Index>(t.test.size()), std::nanf(""));
    return out;
  };
  const auto result = LearningCurve<float>(study(), o).run(world, nan_learner);
  CHECK_THROWS_WITH(summarise_learning_curve(result.points, "net", "mae"), Contains("is not finite") && Contains("size 20"));
  const auto short_learner = [](const curve_task<float>&, auto) {
    curve_outcome out;
    out.predictions = host_matrix<float>::Zero(1, 3);
    return out;
  };
  CHECK_THROWS_WITH(LearningCurve<float>(study(), o).run(world, short_learner), Contains("net-split") && Contains("test rows"));
}

namespace {
/// Scores of an exact power law 0.5 m^-0.4 + 0.1 with a split-dependent wobble of `noise`.
std::vector<curve_point> power_law_points(double noise) {
  std::vector<curve_point> points;
  for (Index s = 0; s < 5; ++s)
    for (const Index m : log2_sizes(64, 16384)) {
      const double wobble = 1.0 + noise * std::sin(1.7 * static_cast<double>(s) + 0.3 * static_cast<double>(m % 7));
      points.push_back({"law", s, m, "mae", 0.5 * std::pow(static_cast<double>(m), -0.4) * wobble + 0.1, 3, 0.5});
      points.push_back({"law", s, m, "r2", 0.5, 3, 0.5});
    }
  return points;
}
}  // namespace

TEST_CASE("A curve's summary: the fit of the medians, bootstrap intervals and its predictions") {
  const curve_summary c = summarise_learning_curve(power_law_points(0.02), "law", "mae", {{}, 100, 0.95, 0.1, 7});
  REQUIRE(c.fit.converged);
  CHECK(c.sizes.size() == 9);
  CHECK(c.fit.r2 > 0.999);
  CHECK(c.fit.curve.beta == Approx(-0.4).margin(0.05));
  CHECK(c.bootstrap_runs == 100);
  CHECK(c.bootstrap_converged >= 90);
  CHECK((c.beta.low <= c.fit.curve.beta && c.fit.curve.beta <= c.beta.high));
  CHECK((c.gamma.low <= c.fit.curve.gamma && c.fit.curve.gamma <= c.gamma.high));
  CHECK(c.beta.high - c.beta.low > 0.0);
  CHECK(c.at_double < c.median.back());
  // 10% below 0.110 at the largest size is below the asymptote 0.1: no size reaches it.
  CHECK(c.target == Approx(0.9 * c.fit.curve(16384.0)));
  CHECK(std::isnan(c.size_for_target));
  CHECK_THAT(curve_summary_text({c}), Contains("(10% below the fit at the largest size) needs more than any size (the asymptote is"));
  const curve_summary five = summarise_learning_curve(power_law_points(0.02), "law", "mae", {{}, 0, 0.95, 0.05, 7});
  CHECK(five.size_for_target > 16384.0);
  CHECK(five.fit.curve(five.size_for_target) == Approx(five.target));
  REQUIRE(c.check);
  CHECK(c.check->curve_wins());
  // The same seed gives the same intervals.
  const curve_summary again = summarise_learning_curve(power_law_points(0.02), "law", "mae", {{}, 100, 0.95, 0.1, 7});
  CHECK(again.beta.low == c.beta.low);
  CHECK_THAT(curve_summary_text({c}), Contains("law (mae, median of 5 splits at 9 sizes, 64 to 16384)") && Contains("the curve wins"));
}

TEST_CASE("A summary refuses what it cannot fit, and reports a fit that fails") {
  auto points = power_law_points(0.0);
  CHECK_THROWS_WITH(summarise_learning_curve(points, "other", "mae"), Contains("no mae scores of model 'other'"));
  auto missing = points;
  missing.erase(missing.begin());  // split 0 at size 64 gone
  CHECK_THROWS_WITH(summarise_learning_curve(missing, "law", "mae"), Contains("every size needs the same splits"));
  auto twice = points;
  twice.push_back(points.front());
  CHECK_THROWS_WITH(summarise_learning_curve(twice, "law", "mae"), Contains("given twice"));
  curve_summary_options few;
  few.fit.min_size = 4096;  // 3 sizes left: a fit, but no extrapolation check
  const auto three = summarise_learning_curve(points, "law", "mae", few);
  CHECK(three.fit.points == 3);
  CHECK_FALSE(three.check);
  few.fit.min_size = 8192;
  CHECK_THROWS_WITH(summarise_learning_curve(points, "law", "mae", few), Contains("needs at least 3"));
  curve_summary_options stingy;
  stingy.fit.max_evaluations = 1;
  const auto failed = summarise_learning_curve(points, "law", "mae", stingy);
  CHECK_FALSE(failed.fit.converged);
  CHECK(std::isnan(failed.at_double));
  CHECK(failed.bootstrap_runs == 0);
  CHECK_THAT(curve_summary_text({failed}), Contains("no fit: "));
}

TEST_CASE("Crossings of two curves; summaries only of errors, binomial weights only of rates") {
  // m^-0.5 and 0.5 m^-0.3 cross where m^-0.2 = 0.5: at m = 32.
  const power_law a{1.0, -0.5, 0.0}, b{0.5, -0.3, 0.0};
  CHECK(crossing_size(a, b, 1.0, 1000.0) == Approx(32.0).epsilon(1e-9));
  CHECK(crossing_size(b, a, 1.0, 1000.0) == Approx(32.0).epsilon(1e-9));
  CHECK(std::isnan(crossing_size(a, b, 100.0, 1000.0)));
  CHECK_THROWS_WITH(crossing_size(a, b, 0.0, 10.0), Contains("0 < low < high"));
  CHECK_THROWS_WITH(summarise_learning_curve(power_law_points(0.0), "law", "r2"), Contains("not an error that falls"));
  auto points = power_law_points(0.0);
  points.push_back({"law", 5, 64, "mae", 1.5, 3, 0.5});  // an error above 1 at a size of every split but one
  curve_summary_options binomial;
  binomial.fit.weights = curve_weights::binomial;
  CHECK_THROWS_WITH(summarise_learning_curve(points, "law", "mae", binomial), Contains("binomial weights need errors in (0, 1)"));
}

TEST_CASE("The tidy CSV reads back what was written; malformed files are refused with their place") {
  const std::string dir = (std::filesystem::temp_directory_path() / "strata_curve_csv").string();
  std::filesystem::create_directories(dir);
  const auto points = power_law_points(0.03);
  write_curve_points_csv(dir + "/points.csv", points);
  const auto back = read_curve_points_csv(dir + "/points.csv");
  REQUIRE(back.size() == points.size());
  for (std::size_t i = 0; i < points.size(); ++i) {
    CHECK(back[i].model == points[i].model);
    CHECK(back[i].split == points[i].split);
    CHECK(back[i].size == points[i].size);
    CHECK(back[i].metric == points[i].metric);
    CHECK(back[i].score == points[i].score);
  }
  const auto write = [&](const std::string& text) {
    std::ofstream(dir + "/bad.csv") << text;
    return dir + "/bad.csv";
  };
  CHECK_THROWS_WITH(read_curve_points_csv(write("model,split,metric,score\nm,0,mae,1\n")), Contains("no column 'size'"));
  CHECK_THROWS_WITH(read_curve_points_csv(write("model,split,size,metric,score\nm,0,12.5,mae,1\n")),
                    Contains("bad.csv:2:") && Contains("not a whole number"));
  CHECK_THROWS_WITH(read_curve_points_csv(write("model,split,size,metric,score\nm,0,12,mae,x\n")), Contains("'x' is not a number"));
  CHECK_THROWS_WITH(read_curve_points_csv(write("model,split,size,metric,score\n")), Contains("holds no scores"));
  CHECK_THROWS_WITH(read_curve_points_csv(dir + "/absent.csv"), Contains("cannot open"));
  std::filesystem::remove_all(dir);
}
