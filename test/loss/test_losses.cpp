// Losses: the values they sum, the gradients they write (against central finite differences in
// double) and how they report mismatched shapes.

#include <catch2/catch.hpp>

#include <cmath>
#include <string>

#include "strata/backend/eigen_backend.hpp"
#include "strata/loss/loss.hpp"

using strata::matrix_d;
using B = strata::EigenBackend<double>;

namespace {

matrix_d make(strata::Index rows, strata::Index cols, std::initializer_list<double> values) {
  matrix_d m(rows, cols);
  strata::Index k = 0;
  for (double v : values) m.data()[k++] = v;  // column-major order
  return m;
}

/// Checks every element of the gradient against a central difference of sum / normalizer.
template <class Loss>
void check_gradient(const Loss& loss, const matrix_d& prediction, const matrix_d& target,
                    double normalizer) {
  matrix_d gradient, scratch;
  loss.template evaluate<B>(prediction, target, gradient, normalizer);
  REQUIRE(gradient.rows() == prediction.rows());
  REQUIRE(gradient.cols() == prediction.cols());
  const double h = 1e-6;
  for (strata::Index i = 0; i < prediction.size(); ++i) {
    matrix_d up = prediction, down = prediction;
    up.data()[i] += h;
    down.data()[i] -= h;
    const double numeric = (loss.template evaluate<B>(up, target, scratch, normalizer) -
                            loss.template evaluate<B>(down, target, scratch, normalizer)) /
                           (2 * h * normalizer);
    INFO("element " << i);
    CHECK(gradient.data()[i] == Approx(numeric).margin(1e-8));
  }
}

}  // namespace

TEST_CASE("MSE sums squared errors and writes the gradient of sum / normalizer", "[loss]") {
  const strata::MSE loss;
  const matrix_d p = make(2, 2, {1.0, 2.0, 3.0, -1.0});
  const matrix_d t = make(2, 2, {0.5, 2.0, 1.0, 1.0});
  matrix_d g;

  SECTION("the value is the sum, not the mean, of (p - t)^2") {
    // 0.25 + 0 + 4 + 4
    CHECK(loss.evaluate<B>(p, t, g, 4.0) == Approx(8.25));
  }
  SECTION("the gradient is 2 (p - t) / normalizer") {
    loss.evaluate<B>(p, t, g, 4.0);
    CHECK(g(0, 0) == Approx(0.25));
    CHECK(g(1, 0) == 0.0);
    CHECK(g(0, 1) == Approx(1.0));
    CHECK(g(1, 1) == Approx(-1.0));
  }
  SECTION("the value does not depend on the normalizer, the gradient scales with 1/normalizer") {
    matrix_d g2;
    CHECK(loss.evaluate<B>(p, t, g2, 8.0) == Approx(8.25));
    loss.evaluate<B>(p, t, g, 4.0);
    CHECK(g2(0, 1) == Approx(g(0, 1) / 2));
  }
  SECTION("the gradient matches finite differences") { check_gradient(loss, p, t, 3.0); }
  SECTION("a gradient matrix of another shape is resized") {
    g.resize(7, 1);
    loss.evaluate<B>(p, t, g, 1.0);
    CHECK(g.rows() == 2);
    CHECK(g.cols() == 2);
  }
  SECTION("a perfect prediction has zero loss and zero gradient") {
    CHECK(loss.evaluate<B>(t, t, g, 1.0) == 0.0);
    CHECK(g.isZero());
  }
}

TEST_CASE("MAE sums absolute errors; its gradient is the sign, 0 at an exact prediction", "[loss]") {
  const strata::MAE loss;
  const matrix_d p = make(3, 1, {1.0, 2.0, -3.0});
  const matrix_d t = make(3, 1, {0.5, 2.0, 1.0});
  matrix_d g;

  SECTION("the value is the sum of |p - t|") { CHECK(loss.evaluate<B>(p, t, g, 3.0) == Approx(4.5)); }
  SECTION("the gradient is sign(p - t) / normalizer, 0 where p == t") {
    loss.evaluate<B>(p, t, g, 2.0);
    CHECK(g(0, 0) == Approx(0.5));
    CHECK(g(1, 0) == 0.0);
    CHECK(g(2, 0) == Approx(-0.5));
  }
  SECTION("away from the kink the gradient matches finite differences") {
    check_gradient(loss, make(2, 2, {1.0, -2.0, 0.3, 4.0}), make(2, 2, {0.0, 1.0, -0.2, 5.0}), 4.0);
  }
}

TEST_CASE("Huber is quadratic inside delta and linear outside", "[loss]") {
  matrix_d g;

  SECTION("the default delta is 1, as PyTorch's HuberLoss") { CHECK(strata::Huber{}.delta == 1.0); }
  SECTION("with delta = 1: 0.5 d^2 for |d| < 1, |d| - 0.5 otherwise") {
    const strata::Huber loss;
    const matrix_d p = make(4, 1, {0.5, -3.0, 1.0, 0.0});
    const matrix_d t = make(4, 1, {0.0, 0.0, 0.0, 0.0});
    // 0.125 + 2.5 + 0.5 + 0
    CHECK(loss.evaluate<B>(p, t, g, 1.0) == Approx(3.125));
    CHECK(g(0, 0) == Approx(0.5));
    CHECK(g(1, 0) == Approx(-1.0));
    CHECK(g(2, 0) == Approx(1.0));
    CHECK(g(3, 0) == 0.0);
  }
  SECTION("with delta = 2 the linear part is delta (|d| - delta / 2) and the gradient clamps at "
          "delta") {
    const strata::Huber loss{2.0};
    const matrix_d p = make(2, 1, {5.0, 1.0});
    const matrix_d t = make(2, 1, {0.0, 0.0});
    // 2 (5 - 1) + 0.5
    CHECK(loss.evaluate<B>(p, t, g, 2.0) == Approx(8.5));
    CHECK(g(0, 0) == Approx(1.0));
    CHECK(g(1, 0) == Approx(0.5));
  }
  SECTION("the gradient matches finite differences on both sides of delta") {
    check_gradient(strata::Huber{0.7}, make(2, 3, {0.1, -0.3, 2.0, -1.5, 0.69, 0.71}),
                   make(2, 3, {0.0, 0.0, 0.0, 0.0, 0.0, 0.0}), 6.0);
  }
  SECTION("a delta that is not positive is rejected") {
    const matrix_d p = make(1, 1, {1.0});
    CHECK_THROWS_AS(strata::Huber{0.0}.evaluate<B>(p, p, g, 1.0), strata::config_error);
  }
}

TEST_CASE("A loss rejects mismatched shapes and a bad normalizer", "[loss]") {
  const matrix_d p = matrix_d::Zero(3, 2);
  const matrix_d t = matrix_d::Zero(2, 3);
  matrix_d g;

  SECTION("the shape error names the loss and both shapes") {
    CHECK_THROWS_WITH(strata::MSE{}.evaluate<B>(p, t, g, 1.0),
                      Catch::Contains("MSE") && Catch::Contains("3x2") && Catch::Contains("2x3"));
    CHECK_THROWS_AS(strata::MAE{}.evaluate<B>(p, t, g, 1.0), strata::shape_error);
    CHECK_THROWS_WITH(strata::Huber{}.evaluate<B>(p, t, g, 1.0), Catch::Contains("Huber"));
  }
  SECTION("a zero, negative or infinite normalizer is a configuration error") {
    CHECK_THROWS_AS(strata::MSE{}.evaluate<B>(p, p, g, 0.0), strata::config_error);
    CHECK_THROWS_AS(strata::MAE{}.evaluate<B>(p, p, g, -1.0), strata::config_error);
    CHECK_THROWS_AS(strata::MSE{}.evaluate<B>(p, p, g, HUGE_VAL), strata::config_error);
  }
}

TEST_CASE("Losses run in single precision and still sum in double", "[loss]") {
  using F = strata::EigenBackend<float>;
  strata::matrix_f p(1, 2), t(1, 2), g;
  p << 1.0f, 3.0f;
  t << 0.0f, 0.0f;
  CHECK(strata::MSE{}.evaluate<F>(p, t, g, 2.0) == Approx(10.0));
  CHECK(g(0, 1) == Approx(3.0f));
}
