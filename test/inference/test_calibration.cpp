// int8 calibration without a kernel library: each Dense layer's input range measured on a
// sample, and kept in the model file bit for bit; files without one (older ones) keep loading,
// and a damaged entry is refused naming the layer.
#include <catch2/catch.hpp>

#include <strata/strata.hpp>
#include <strata/inference/calibration.hpp>
#include <strata/train/model_file.hpp>

#include "../support/temporary_path.hpp"

#include <cmath>
#include <cstring>
#include <string>

using namespace strata;
using Catch::Matchers::Contains;

namespace {
using Net = Sequential<Dense<6>, ReLU, Dense<3>, Tanh, Dense<1>>;

matrix_f sample(Index n) {
  matrix_f x(4, n);
  for (Index i = 0; i < x.size(); ++i) x.data()[i] = std::sin(0.37f * static_cast<float>(i)) * 2.5f;
  return x;
}
}  // namespace

TEST_CASE("Calibration records every Dense layer's input range") {
  Model<Net> model(Net{Dense<6>{}, ReLU{}, Dense<3>{}, Tanh{}, Dense<1>{}});
  model.build(4, 3);
  const matrix_f x = sample(300);
  const dense_calibration c = calibrate_dense_inputs(model, x, 128);  // chunks: the range spans them all
  REQUIRE(c.size() == 3);
  const input_range& first = c.at("model/0:Dense");
  CHECK(first.largest_magnitude == x.cwiseAbs().maxCoeff());
  CHECK_FALSE(first.nonnegative);
  CHECK(c.at("model/2:Dense").nonnegative);  // behind a ReLU
  CHECK(c.at("model/4:Dense").largest_magnitude <= 1.0f);  // behind a tanh
  CHECK(model.kernels() == nullptr);  // the recorder is gone
}

TEST_CASE("A model file keeps its calibration bit for bit") {
  Model<Net> model(Net{Dense<6>{}, ReLU{}, Dense<3>{}, Tanh{}, Dense<1>{}});
  model.build(4, 3);
  const dense_calibration c = calibrate_dense_inputs(model, sample(50));
  const testing::temporary_path file{"strata_calibration_"};
  state_file contents;
  contents.meta["kind"] = "calibration-test";
  store_calibration(contents, c, 50);
  save_model_file(model, file.path, contents);

  const state_file read = state_file::read(file.path);
  const dense_calibration back = stored_calibration(read, file.path);
  REQUIRE(back.size() == c.size());
  for (const auto& [path, range] : c) {
    CHECK(back.at(path).largest_magnitude == range.largest_magnitude);
    CHECK(back.at(path).nonnegative == range.nonnegative);
  }
  CHECK(read.meta.at("calibration_samples") == "50");
  Model<Net> again(Net{Dense<6>{}, ReLU{}, Dense<3>{}, Tanh{}, Dense<1>{}});
  again.build(4, 9);
  CHECK_NOTHROW(load_model_file(again, file.path, "calibration-test"));  // the model loads beside it

  SECTION("a file without a calibration (every file before it existed) has none") {
    CHECK(stored_calibration(state_file::read(STRATA_COMPAT_DIR "/v1.model"), "v1.model").empty());
  }
  SECTION("a damaged calibration is refused, naming the layer") {
    state_file bad = read;
    for (auto& t : bad.tensors)
      if (t.name == "calibration/model/2:Dense") {
        host_matrix<float> v(2, 1);
        v << std::nanf(""), 1.0f;
        std::memcpy(t.data.data(), v.data(), t.data.size());
      }
    CHECK_THROWS_WITH(stored_calibration(bad, "m.model"), Contains("model/2:Dense") && Contains("magnitude"));
    bad = read;
    bad.add("calibration/model/4:Dense2", host_matrix<float>(3, 1));
    CHECK_THROWS_AS(stored_calibration(bad, "m.model"), io_error);
  }
}
