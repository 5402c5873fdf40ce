// Regression metrics against hand-computed values, their conventions for degenerate inputs, and
// the metric enumeration used by configuration and early stopping.

#include <catch2/catch.hpp>

#include <cmath>
#include <string>

#include "strata/train/metrics.hpp"

using Eigen::VectorXd;

namespace {
VectorXd vec(std::initializer_list<double> values) {
  VectorXd v(static_cast<Eigen::Index>(values.size()));
  Eigen::Index k = 0;
  for (double x : values) v(k++) = x;
  return v;
}
}  // namespace

TEST_CASE("Error metrics average over all elements", "[metrics]") {
  const VectorXd p = vec({1.0, 2.0, 4.0, 0.0});
  const VectorXd t = vec({2.0, 2.0, 1.0, 0.0});
  // errors: -1, 0, 3, 0

  SECTION("mse is the mean squared error") { CHECK(strata::mse(p, t) == Approx(10.0 / 4)); }
  SECTION("mae is the mean absolute error") { CHECK(strata::mae(p, t) == Approx(4.0 / 4)); }
  SECTION("rmse is the square root of mse") { CHECK(strata::rmse(p, t) == Approx(std::sqrt(2.5))); }
  SECTION("a perfect prediction has zero error") {
    CHECK(strata::mse(t, t) == 0.0);
    CHECK(strata::mae(t, t) == 0.0);
    CHECK(strata::rmse(t, t) == 0.0);
  }
  SECTION("matrices are treated as one set of elements") {
    Eigen::MatrixXd pm(2, 2), tm(2, 2);
    pm << 1.0, 4.0, 2.0, 0.0;
    tm << 2.0, 1.0, 2.0, 0.0;
    CHECK(strata::mse(pm, tm) == Approx(2.5));
  }
  SECTION("a single sample is enough for an error metric") {
    CHECK(strata::mae(vec({3.0}), vec({1.0})) == Approx(2.0));
  }
}

TEST_CASE("r2 is 1 - SS_res / SS_tot", "[metrics]") {
  const VectorXd t = vec({1.0, 2.0, 3.0, 4.0});  // mean 2.5, SS_tot = 5

  SECTION("hand-computed value") {
    // residuals 0.5, -0.5, 0, 1 -> SS_res = 1.5
    CHECK(strata::r2(vec({0.5, 2.5, 3.0, 3.0}), t) == Approx(1.0 - 1.5 / 5.0));
  }
  SECTION("a perfect prediction scores 1") { CHECK(strata::r2(t, t) == Approx(1.0)); }
  SECTION("predicting the mean scores 0") {
    CHECK(strata::r2(VectorXd::Constant(4, 2.5), t) == Approx(0.0).margin(1e-12));
  }
  SECTION("worse than the mean is negative") {
    CHECK(strata::r2(vec({4.0, 3.0, 2.0, 1.0}), t) == Approx(1.0 - 20.0 / 5.0));
  }
  SECTION("a constant target gives 1 when matched exactly and 0 otherwise, never NaN") {
    const VectorXd c = VectorXd::Constant(3, 7.0);
    CHECK(strata::r2(c, c) == 1.0);
    CHECK(strata::r2(vec({7.0, 7.0, 8.0}), c) == 0.0);
  }
}

TEST_CASE("pearson measures linear association", "[metrics]") {
  SECTION("hand-computed value") {
    // x centred: -1, 0, 1; y centred: -2/3, -2/3, 4/3 -> cov 2, sxx 2, syy 8/3
    CHECK(strata::pearson(vec({1.0, 2.0, 3.0}), vec({1.0, 1.0, 3.0})) ==
          Approx(2.0 / std::sqrt(2.0 * 8.0 / 3.0)));
  }
  SECTION("an exact affine relation gives +1 or -1") {
    const VectorXd x = vec({0.1, 0.5, 0.2, 0.9});
    CHECK(strata::pearson(3.0 * x.array() + 2.0, x) == Approx(1.0));
    CHECK(strata::pearson(-0.5 * x.array() + 1.0, x) == Approx(-1.0));
  }
  SECTION("it is immune to a large common offset") {
    const VectorXd x = vec({1.0, 2.0, 3.0});
    const VectorXd shifted = x.array() + 1e9;
    CHECK(strata::pearson(shifted, vec({1.0, 1.0, 3.0})) ==
          Approx(2.0 / std::sqrt(2.0 * 8.0 / 3.0)).epsilon(1e-6));
  }
  SECTION("a constant side reports 0") {
    CHECK(strata::pearson(VectorXd::Constant(3, 1.0), vec({1.0, 2.0, 3.0})) == 0.0);
    CHECK(strata::pearson(vec({1.0, 2.0, 3.0}), VectorXd::Constant(3, 1.0)) == 0.0);
  }
}

TEST_CASE("spearman is the pearson correlation of average ranks", "[metrics]") {
  SECTION("any increasing relation gives 1, any decreasing one -1") {
    const VectorXd x = vec({1.0, 2.0, 3.0, 4.0, 5.0});
    CHECK(strata::spearman(x.array().exp(), x) == Approx(1.0));
    CHECK(strata::spearman(x.array().cube() * -1.0, x) == Approx(-1.0));
  }
  SECTION("ties share their average rank") {
    // p ranks: 1, 2.5, 2.5, 4; t ranks: 1, 2, 3, 4.
    // centred: -1.5, 0, 0, 1.5 and -1.5, -0.5, 0.5, 1.5 -> cov 4.5, sxx 4.5, syy 5
    CHECK(strata::spearman(vec({10.0, 20.0, 20.0, 30.0}), vec({1.0, 2.0, 3.0, 4.0})) ==
          Approx(4.5 / std::sqrt(4.5 * 5.0)));
  }
  SECTION("ties on both sides, in unsorted order") {
    // p = (3, 1, 3, 2) -> ranks (3.5, 1, 3.5, 2); t = (5, 5, 9, 1) -> ranks (2.5, 2.5, 4, 1)
    // centred: (1, -1.5, 1, -0.5) and (0, 0, 1.5, -1.5) -> cov 2.25, sxx 4.5, syy 4.5
    CHECK(strata::spearman(vec({3.0, 1.0, 3.0, 2.0}), vec({5.0, 5.0, 9.0, 1.0})) ==
          Approx(2.25 / 4.5));
  }
  SECTION("a constant side reports 0") {
    CHECK(strata::spearman(VectorXd::Constant(4, 2.0), vec({1.0, 2.0, 3.0, 4.0})) == 0.0);
  }
  SECTION("a NaN gives NaN instead of an undefined sort") {
    CHECK(std::isnan(strata::spearman(vec({1.0, std::nan(""), 2.0}), vec({1.0, 2.0, 3.0}))));
  }
}

TEST_CASE("Metrics reject mismatched sizes and too few samples", "[metrics]") {
  const VectorXd three = vec({1.0, 2.0, 3.0});
  const VectorXd two = vec({1.0, 2.0});
  const VectorXd one = vec({1.0});
  const VectorXd none(0);

  SECTION("a size mismatch is a data error naming the metric and both shapes") {
    CHECK_THROWS_WITH(strata::mse(three, two),
                      Catch::Contains("mse") && Catch::Contains("3x1") && Catch::Contains("2x1"));
    CHECK_THROWS_AS(strata::mae(three, two), strata::data_error);
    CHECK_THROWS_AS(strata::rmse(two, three), strata::data_error);
    CHECK_THROWS_AS(strata::r2(three, two), strata::data_error);
    CHECK_THROWS_AS(strata::pearson(three, two), strata::data_error);
    CHECK_THROWS_AS(strata::spearman(three, two), strata::data_error);
  }
  SECTION("error metrics need one sample") {
    CHECK_THROWS_AS(strata::mse(none, none), strata::data_error);
    CHECK_THROWS_AS(strata::mae(none, none), strata::data_error);
  }
  SECTION("r2 and the correlations need two samples") {
    CHECK_THROWS_AS(strata::r2(one, one), strata::data_error);
    CHECK_THROWS_AS(strata::pearson(one, one), strata::data_error);
    CHECK_THROWS_WITH(strata::spearman(one, one), Catch::Contains("at least 2"));
  }
}

TEST_CASE("The metric enumeration round-trips through names", "[metrics]") {
  using strata::metric;
  const metric all[] = {metric::mse, metric::mae, metric::rmse,
                        metric::r2, metric::pearson, metric::spearman};

  SECTION("every metric parses back from its name") {
    for (metric m : all) CHECK(strata::parse_metric(strata::to_string(m)) == m);
  }
  SECTION("parsing ignores case") { CHECK(strata::parse_metric("RMSE") == metric::rmse); }
  SECTION("an unknown name is a configuration error listing the valid names") {
    CHECK_THROWS_AS(strata::parse_metric("accuracy"), strata::config_error);
    CHECK_THROWS_WITH(strata::parse_metric("accuracy"),
                      Catch::Contains("accuracy") && Catch::Contains("spearman") &&
                          Catch::Contains("mse"));
  }
  SECTION("correlations and r2 are maximised, errors minimised") {
    CHECK(strata::higher_is_better(metric::r2));
    CHECK(strata::higher_is_better(metric::pearson));
    CHECK(strata::higher_is_better(metric::spearman));
    CHECK_FALSE(strata::higher_is_better(metric::mse));
    CHECK_FALSE(strata::higher_is_better(metric::mae));
    CHECK_FALSE(strata::higher_is_better(metric::rmse));
  }
  SECTION("compute dispatches to the named metric") {
    const VectorXd p = vec({1.0, 2.0, 4.0});
    const VectorXd t = vec({1.0, 3.0, 2.0});
    CHECK(strata::compute(metric::mse, p, t) == Approx(strata::mse(p, t)));
    CHECK(strata::compute(metric::mae, p, t) == Approx(1.0));
    CHECK(strata::compute(metric::rmse, p, t) == Approx(strata::rmse(p, t)));
    CHECK(strata::compute(metric::r2, p, t) == Approx(strata::r2(p, t)));
    CHECK(strata::compute(metric::pearson, p, t) == Approx(strata::pearson(p, t)));
    CHECK(strata::compute(metric::spearman, p, t) == Approx(strata::spearman(p, t)));
  }
}
