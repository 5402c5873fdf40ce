// Run-time widths: every mismatch is a shape_error at build time that names the layer and both
// shapes; NaN in a batch is caught with the layer that produced it.
#include <catch2/catch.hpp>

#include <strata/strata.hpp>

#include <limits>

using namespace strata;
using Catch::Matchers::Contains;

TEST_CASE("Run-time shape mismatches are reported at build time, naming the layer") {
  SECTION("a residual around a width-changing network") {
    Model<Sequential<Dense<>, Residual<Sequential<Dense<>, ReLU>>>> model({Dense<>{8}, Residual<Sequential<Dense<>, ReLU>>{{Dense<>{4}, ReLU{}}}});
    CHECK_THROWS_WITH(model.build(3, 1), Contains("model/1:Residual") && Contains("width 8 to width 4"));
    CHECK_THROWS_AS(model.build(3, 1), shape_error);
  }
  SECTION("a slice beyond the input") {
    Model<Fork<Branch<Dense<2>>>> model(Fork<Branch<Dense<2>>>{Branch<Dense<2>>{Slice<>{5, 12}, Dense<2>{}}});
    CHECK_THROWS_WITH(model.build(10, 1), Contains("model/0:Branch/0:Slice") && Contains("[5, 12)") && Contains("width 10"));
  }
  SECTION("shared slices of different widths") {
    using S = Shared<Dense<2>, Slice<>, Slice<>>;
    Model<S> model(S{Dense<2>{}, Slice<>{0, 3}, Slice<>{3, 7}});
    CHECK_THROWS_WITH(model.build(7, 1), Contains("model") && Contains("width 4") && Contains("width 3"));
  }
  SECTION("a dense layer whose width was never set") {
    Model<Sequential<Dense<4>, Dense<>>> model;
    CHECK_THROWS_WITH(model.build(3, 1), Contains("model/1:Dense") && Contains("width is not set"));
  }
  SECTION("a declared input width that the data does not have") {
    Model<Sequential<Input<>, Dense<2>>> model({Input<>{6}, Dense<2>{}});
    CHECK_THROWS_WITH(model.build(5, 1), Contains("model/0:Input") && Contains("expects width 6") && Contains("width 5"));
  }
}

TEST_CASE("A batch of the wrong width is refused with both shapes") {
  Model<Sequential<Dense<4>, ReLU, Dense<1>>> model;
  model.build(3, 1);
  const matrix_f wrong = matrix_f::Ones(5, 2);
  CHECK_THROWS_AS(model.forward(wrong), shape_error);
  CHECK_THROWS_WITH(model.forward(wrong), Contains("expects 3 features") && Contains("5x2"));
}

TEST_CASE("Non-finite values are caught and the responsible layer named") {
  Model<Sequential<Dense<4>, ReLU, Dense<1>>> model;
  model.build(3, 1);
  pass_info checked;
  checked.check_finite = true;
  SECTION("NaN in the input batch") {
    matrix_f x = matrix_f::Ones(3, 4);
    x(1, 2) = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_AS(model.forward(x, checked), numeric_error);
    CHECK_THROWS_WITH(model.forward(x, checked), Contains("input batch") && Contains("row 1") && Contains("sample column 2"));
  }
  SECTION("a weight that became infinite") {
    (*model.parameters()[2].value)(0, 1) = std::numeric_limits<float>::infinity();
    const matrix_f x = matrix_f::Ones(3, 4);
    CHECK_THROWS_WITH(model.forward(x, checked), Contains("model/2:Dense"));
  }
  SECTION("an infinity in the first layer is traced back to it, not to the output it reaches") {
    // Model::forward checks the output, then runs the pass again layer by layer to name the origin.
    auto& first = *model.parameters()[0].value;
    first.setZero();
    first(0, 0) = std::numeric_limits<float>::infinity();
    auto& last = *model.parameters()[2].value;
    last.setOnes();
    const matrix_f x = matrix_f::Ones(3, 4);
    CHECK_THROWS_WITH(model.forward(x, checked), Contains("model/0:Dense") && Contains("row 0"));
  }
  SECTION("an infinity that a ReLU removes changes nothing downstream and passes") {
    auto& first = *model.parameters()[0].value;
    first.setOnes();
    first(1, 0) = -std::numeric_limits<float>::infinity();  // row 1: -inf, then ReLU: 0
    const matrix_f x = matrix_f::Ones(3, 4);
    const matrix_f y = model.forward(x, checked);
    CHECK(y.allFinite());
  }
}

TEST_CASE("Using a model before building it is an error, not a crash") {
  Model<Dense<1>> model;
  CHECK_THROWS_AS(model.forward(matrix_f::Ones(1, 1)), error);
}
