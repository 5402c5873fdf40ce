// Learning-curve fits: the power law is recovered from its own values, fits noisy curves well,
// answers "what at twice the data" and "how much data for 10% less error", is checked against
// the last-value baseline, and says when it cannot fit instead of printing a result.
#include <catch2/catch.hpp>

#include <strata/analysis/power_law_fit.hpp>
#include <strata/core/random.hpp>

#include <cmath>

using namespace strata;
using Catch::Matchers::Contains;

namespace {
std::vector<double> log2_sizes(int first, int last) {
  std::vector<double> m;
  for (int k = first; k <= last; ++k) m.push_back(std::ldexp(1.0, k));
  return m;
}
std::vector<double> scores_of(const power_law& c, const std::vector<double>& m, double noise = 0.0, std::uint64_t seed = 1) {
  const random_stream rng(seed, purpose::data);
  std::vector<double> e;
  for (std::size_t i = 0; i < m.size(); ++i) e.push_back(c(m[i]) * (1.0 + noise * rng.normal(i)));
  return e;
}
}  // namespace

TEST_CASE("A power law is recovered from its own values, with every weighting") {
  const power_law truth{0.9, -0.35, 0.05};
  const auto m = log2_sizes(8, 17);
  for (const auto w : {curve_weights::relative_size, curve_weights::binomial, curve_weights::none}) {
    power_law_fit_options o;
    o.weights = w;
    const power_law_fit fit = fit_power_law(m, scores_of(truth, m), o);
    INFO("weights " << static_cast<int>(w) << ": " << fit.failure);
    REQUIRE(fit.converged);
    CHECK(fit.curve.alpha == Approx(truth.alpha).epsilon(1e-6));
    CHECK(fit.curve.beta == Approx(truth.beta).epsilon(1e-6));
    CHECK(fit.curve.gamma == Approx(truth.gamma).margin(1e-8));
    CHECK(fit.r2 > 1.0 - 1e-10);
    CHECK(fit.points == 10);
  }
}

TEST_CASE("A noisy curve is fitted well, and answers the questions a study asks of it") {
  const power_law truth{1.2, -0.25, 0.08};
  const auto m = log2_sizes(7, 16);
  const auto e = scores_of(truth, m, 0.01);
  const power_law_fit fit = fit_power_law(m, e);
  REQUIRE(fit.converged);
  CHECK(fit.r2 >= 0.99);
  CHECK(fit.curve.beta == Approx(truth.beta).margin(0.05));
  CHECK(fit.rmse < 0.01 * e.front());
  // Twice the largest size: below the largest size's score, above the asymptote.
  const double at_double = fit.curve(2 * m.back());
  CHECK(at_double < fit.curve(m.back()));
  CHECK(at_double > fit.curve.gamma);
  // The size for 10% less error than at the largest size: the curve gives that score there.
  const double target = 0.9 * fit.curve(m.back());
  const double needed = fit.curve.size_for(target);
  CHECK(needed > m.back());
  CHECK(fit.curve(needed) == Approx(target).epsilon(1e-9));
  // A score below the asymptote is never reached.
  CHECK(std::isnan(fit.curve.size_for(0.5 * fit.curve.gamma)));
}

TEST_CASE("Points below min_size are left out; a fit needs three points") {
  const power_law truth{0.9, -0.35, 0.05};
  const auto m = log2_sizes(4, 12);
  auto e = scores_of(truth, m);
  e[0] = 5.0;  // the smallest sizes often sit off the curve
  e[1] = 4.0;
  power_law_fit_options o;
  o.min_size = 64;
  const auto fit = fit_power_law(m, e, o);
  REQUIRE(fit.converged);
  CHECK(fit.points == 7);
  CHECK(fit.curve.beta == Approx(truth.beta).epsilon(1e-6));
  o.min_size = 2048;
  CHECK_THROWS_WITH(fit_power_law(m, e, o), Contains("2 points at sizes >= 2048"));
  CHECK_THROWS_WITH(fit_power_law({1, 2, 0}, {1, 1, 1}), Contains("size 0 is not a positive number"));
  CHECK_THROWS_WITH(fit_power_law({1, 2, 4}, {1, NAN, 1}), Contains("score at size 2 is not finite"));
  CHECK_THROWS_WITH(fit_power_law({1, 2}, {1, 1, 1}), Contains("2 sizes but 3 scores"));
  power_law_fit_options binomial;
  binomial.weights = curve_weights::binomial;
  CHECK_THROWS_WITH(fit_power_law({1, 2, 4}, {0.5, 1.5, 0.2}, binomial), Contains("scores in (0, 1)"));
}

TEST_CASE("A fit the solver cannot make is reported, not returned as a result") {
  const auto m = log2_sizes(8, 14);
  power_law_fit_options o;
  o.max_evaluations = 2;
  const auto fit = fit_power_law(m, scores_of({0.9, -0.35, 0.05}, m, 0.02), o);
  CHECK_FALSE(fit.converged);
  CHECK_THAT(fit.failure, Contains("no convergence in 2 evaluations"));
  CHECK(std::isnan(fit.r2));
}

TEST_CASE("The extrapolation check pits the curve against the last value") {
  // On a curve that is still falling, the fitted curve predicts the largest size better.
  const auto m = log2_sizes(8, 16);
  const auto falling = check_extrapolation(m, scores_of({0.9, -0.35, 0.05}, m, 0.002));
  REQUIRE(falling.fit.converged);
  CHECK(falling.size == m.back());
  CHECK(falling.last_value == scores_of({0.9, -0.35, 0.05}, m, 0.002)[m.size() - 2]);
  CHECK(falling.curve_wins());
  // On a curve that has flattened out (noise around a constant), the last value is hard to beat.
  std::vector<double> flat(m.size(), 0.2);
  flat[m.size() - 2] = 0.2001;
  flat[m.size() - 1] = 0.2001;
  flat[0] = 0.26;
  flat[1] = 0.21;
  const auto flattened = check_extrapolation(m, flat);
  CHECK(std::abs(flattened.last_value - flattened.observed) == 0.0);
  CHECK_FALSE(flattened.curve_wins());
  CHECK_THROWS_WITH(check_extrapolation({1, 2, 3}, {1, 1, 1}), Contains("at least 4"));
}

TEST_CASE("The asymptote is bounded below by zero unless asked otherwise") {
  const power_law truth{1.0, -0.3, -0.05};  // a curve that would fall below zero
  const auto m = log2_sizes(6, 16);
  const auto e = scores_of(truth, m);
  const power_law_fit bounded = fit_power_law(m, e);
  REQUIRE(bounded.converged);
  CHECK(bounded.curve.gamma >= 0.0);
  CHECK(bounded.curve.gamma < 1e-6);  // on the bound
  power_law_fit_options free;
  free.nonnegative_asymptote = false;
  const power_law_fit unbounded = fit_power_law(m, e, free);
  REQUIRE(unbounded.converged);
  CHECK(unbounded.curve.gamma == Approx(-0.05).margin(1e-6));
  CHECK(unbounded.r2 > bounded.r2);
}

TEST_CASE("Only a falling curve answers the size a lower error needs") {
  CHECK(std::isnan(power_law{1.0, 0.5, 0.0}.size_for(10.0)));   // rising
  CHECK(std::isnan(power_law{-1.0, -0.5, 1.0}.size_for(0.9)));  // rising towards its asymptote
  CHECK(power_law{1.0, -0.5, 0.0}.size_for(0.1) == Approx(100.0));
}
