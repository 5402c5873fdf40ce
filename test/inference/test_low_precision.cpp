// OnednnInference: a model's Dense layers on oneDNN in fp32, bf16 and int8, set on the model for
// its evaluation passes, against the model's own fp32 predictions on docking descriptors.

#include <catch2/catch.hpp>

#include <strata/data/synthetic_library.hpp>
#include <strata/inference/low_precision.hpp>
#include <strata/models/combo.hpp>
#include <strata/models/docking.hpp>
#include <strata/train/metrics.hpp>

#include <limits>
#include <string>
#include <vector>

using namespace strata;

namespace {

/// Features of `count` molecules of the synthetic library, starting at `first`.
matrix_f molecules(molecule_features f, std::uint64_t first, Index count) {
  const SyntheticLibrary library;
  const SyntheticLibraryDataset<float> data(library, f, first, count);
  std::vector<Index> rows(static_cast<std::size_t>(count));
  for (Index j = 0; j < count; ++j) rows[static_cast<std::size_t>(j)] = j;
  matrix_f x, y;
  data.gather(rows.data(), count, x, y);
  return x;
}

matrix_f descriptors(std::uint64_t first, Index count) { return molecules(molecule_features::descriptors, first, count); }

/// Another set's Dense kernels without its int8 sparse layers.
struct dense_only : dense_kernels {
  dense_kernels& inner;
  explicit dense_only(dense_kernels& k) : inner(k) {}
  bool forward(const std::string& path, const host_matrix<float>& x, host_matrix<float>& y) override { return inner.forward(path, x, y); }
};

/// Another set's kernels, counting the Dense layers that ran fused with their ReLU.
struct counting : dense_kernels {
  dense_kernels& inner;
  int rectified = 0;
  explicit counting(dense_kernels& k) : inner(k) {}
  bool forward(const std::string& path, const host_matrix<float>& x, host_matrix<float>& y) override { return inner.forward(path, x, y); }
  bool forward_rectified(const std::string& path, const host_matrix<float>& x, host_matrix<float>& y) override {
    const bool ran = inner.forward_rectified(path, x, y);
    rectified += ran ? 1 : 0;
    return ran;
  }
};

double largest_difference(const matrix_f& a, const matrix_f& b) { return (a - b).cwiseAbs().maxCoeff(); }

/// Another set's kernels, counting the row windows read in place; with `in_place` false it reads
/// none, so the slices are copied first.
struct windows : dense_kernels {
  dense_kernels& inner;
  bool in_place;
  int read = 0;
  windows(dense_kernels& k, bool read_in_place) : inner(k), in_place(read_in_place) {}
  bool forward(const std::string& path, const host_matrix<float>& x, host_matrix<float>& y) override { return inner.forward(path, x, y); }
  bool forward_rectified(const std::string& path, const host_matrix<float>& x, host_matrix<float>& y) override {
    return inner.forward_rectified(path, x, y);
  }
  bool forward_strided(const std::string& path, const strided_input& x, float* y, Index outputs, bool rectified) override {
    if (!in_place) return false;
    const bool ran = inner.forward_strided(path, x, y, outputs, rectified);
    read += ran ? 1 : 0;
    return ran;
  }
};

}  // namespace

TEST_CASE("A model's Dense layers run on oneDNN while its kernels are set") {
  Model<DescriptorMLP> model(make_descriptor_mlp());
  const matrix_f x = descriptors(0, 1500);
  model.build(x.rows(), 11);
  const matrix_f own = model.predict(x, 512);
  const double scale = own.cwiseAbs().maxCoeff();

  SECTION("fp32: the same predictions to rounding") {
    OnednnInference fast(model, precision::fp32);
    CHECK(fast.layers() == 5);  // 1,613 -> 250 -> 125 -> 60 -> 30 -> 1
    model.set_dense_kernels(&fast);
    const matrix_f with = model.predict(x, 512);
    CHECK(largest_difference(with, own) < 1e-4 * scale);
    model.set_dense_kernels(nullptr);
    CHECK(model.predict(x, 512) == own);  // the layers' own products again
  }

  SECTION("bf16 and int8 keep the ranking") {
    const dense_calibration calibration = calibrate_dense_inputs(model, descriptors(100000, 2000));
    REQUIRE(calibration.size() == 5);
    // The first layer reads standardised descriptors (signed); the others read ReLU outputs.
    CHECK_FALSE(calibration.at("model/0:Sequential/0:Dense").nonnegative);
    CHECK(calibration.at("model/0:Sequential/0:Dense").largest_magnitude > 0.0f);
    for (const auto& [path, range] : calibration)
      if (path != "model/0:Sequential/0:Dense") CHECK(range.nonnegative);
    for (precision p : {precision::bf16, precision::int8}) {
      CAPTURE(to_string(p));
      if (const std::string why = precision_unavailable(p); !why.empty()) {
        WARN(to_string(p) << " not tested: " << why);
        continue;
      }
      OnednnInference fast(model, p, calibration);
      model.set_dense_kernels(&fast);
      const matrix_f with = model.predict(x, 512);
      model.set_dense_kernels(nullptr);
      CHECK(largest_difference(with, own) > 1e-4 * scale);  // beyond fp32's rounding: the arithmetic did change
      CHECK(largest_difference(with, own) < 0.05 * scale);
      CHECK(spearman(with.cast<double>(), own.cast<double>()) > 0.999);
    }
  }

  SECTION("a Dense layer and its ReLU run as one matmul, with the same results as one after the other") {
    const dense_calibration calibration = calibrate_dense_inputs(model, descriptors(100000, 500));
    for (precision p : {precision::fp32, precision::bf16, precision::int8}) {
      CAPTURE(to_string(p));
      if (!precision_unavailable(p).empty()) continue;
      OnednnInference fast(model, p, calibration);
      counting fused(fast);
      dense_only separate(fast);  // no fused kernel: the Dense layer, then the ReLU layer
      model.set_dense_kernels(&fused);
      const matrix_f one_step = model.predict(x, 512);
      model.set_dense_kernels(&separate);
      const matrix_f two_steps = model.predict(x, 512);
      model.set_dense_kernels(nullptr);
      CHECK(fused.rectified == 4 * 3);  // the 4 hidden layers in each of 3 batches
      CHECK(one_step == two_steps);
      // Training passes never fuse: the kernels are for evaluation only.
      model.set_dense_kernels(&fused);
      fused.rectified = 0;
      pass_info train;
      train.phase = mode::train;
      const matrix_f few = x.leftCols(8);
      model.forward(few, train);
      model.set_dense_kernels(nullptr);
      CHECK(fused.rectified == 0);
    }
  }

  SECTION("int8 without a calibration of every layer is refused, naming the layer") {
    dense_calibration partial = calibrate_dense_inputs(model, descriptors(100000, 100));
    partial.erase("model/2:Sequential/0:Dense");
    CHECK_THROWS_WITH(OnednnInference(model, precision::int8, partial), Catch::Contains("model/2:Sequential/0:Dense"));
    CHECK_THROWS_AS(calibrate_dense_inputs(model, matrix_f(x.rows(), 0)), config_error);
  }

  SECTION("a rebuilt model forgets its kernels; kernels refuse a batch of another width") {
    OnednnInference fast(model, precision::fp32);
    model.set_dense_kernels(&fast);
    model.build(x.rows(), 11);
    CHECK(model.kernels() == nullptr);
    Model<DescriptorMLP> narrower(make_descriptor_mlp());
    narrower.build(100, 11);
    narrower.set_dense_kernels(&fast);
    CHECK_THROWS_WITH(narrower.predict(matrix_f::Zero(100, 4)), Catch::Contains("made for 1613 inputs"));
  }
}

TEST_CASE("Calibration names the layer whose input is not finite") {
  Model<DescriptorMLP> model(make_descriptor_mlp());
  matrix_f x = descriptors(0, 10);
  model.build(x.rows(), 3);
  x(4, 7) = std::numeric_limits<float>::infinity();
  CHECK_THROWS_WITH(calibrate_dense_inputs(model, x), Catch::Contains("model/0:Sequential/0:Dense"));
  CHECK(model.kernels() == nullptr);  // the recorder is gone after the failure
}

TEST_CASE("In int8 a fingerprint model's sparse first layer runs in int8 too, and the ranking holds") {
  if (const std::string why = precision_unavailable(precision::int8); !why.empty()) {
    WARN("int8 not tested: " << why);
    return;
  }
  Model<FingerprintMLP> model(make_fingerprint_mlp());
  const matrix_f x = molecules(molecule_features::fingerprint_counts, 0, 1500);
  model.build(x.rows(), 12);
  const matrix_f own = model.predict(x, 512);
  const dense_calibration calibration = calibrate_dense_inputs(model, molecules(molecule_features::fingerprint_counts, 100000, 2000));
  CHECK(calibration.size() == 4);  // 256 -> 64 -> 16 -> 1 after the sparse layer, which needs none
  for (const auto& entry : calibration) CHECK(entry.first.find("SparseInputDense") == std::string::npos);
  CHECK(OnednnInference(model, precision::bf16).sparse_layers() == 0);
  OnednnInference fast(model, precision::int8, calibration);
  CHECK(fast.sparse_layers() == (sparse_int8_available ? 1u : 0u));
  model.set_dense_kernels(&fast);
  const matrix_f with = model.predict(x, 512);
  dense_only tail(fast);
  model.set_dense_kernels(&tail);
  const matrix_f tail_only = model.predict(x, 512);
  model.set_dense_kernels(nullptr);
  const double scale = own.cwiseAbs().maxCoeff();
  CHECK(largest_difference(with, own) < 0.05 * scale);
  CHECK(spearman(with.cast<double>(), own.cast<double>()) > 0.999);
  if (sparse_int8_available) CHECK(largest_difference(with, tail_only) > 1e-4 * scale);  // the first layer did change
}

TEST_CASE("A Combo model's encoders read their slices of the input in place, with the copies' results") {
  combo_options o;
  o.cell_width = 37;
  o.drug_width = 53;
  o.width = 24;
  Model<Combo> model(make_combo(o));
  const Index inputs = o.cell_width + 2 * o.drug_width;
  model.build(inputs, 5);
  const random_stream rng(3, purpose::data, 1);
  matrix_f x(inputs, 700);
  for (Index k = 0; k < x.size(); ++k) x.data()[k] = static_cast<float>(rng.normal(static_cast<std::uint64_t>(k)));
  SECTION("the same predictions as from copies of the slices, in every precision") {
    const dense_calibration calibration = calibrate_dense_inputs(model, x.leftCols(300));
    for (precision p : {precision::fp32, precision::bf16, precision::int8}) {
      CAPTURE(to_string(p));
      if (!precision_unavailable(p).empty()) continue;
      OnednnInference fast(model, p, calibration);
      windows in_place(fast, true), copied(fast, false);
      model.set_dense_kernels(&in_place);
      const matrix_f read_in_place = model.predict(x, 256);
      model.set_dense_kernels(&copied);
      const matrix_f from_copies = model.predict(x, 256);
      model.set_dense_kernels(nullptr);
      // The cell encoder's first layer reads one window, the shared drug encoder's two, per batch.
      CHECK(in_place.read == 3 * 3);
      CHECK(copied.read == 0);
      if (p == precision::fp32)  // oneDNN may choose another fp32 kernel for a strided source
        CHECK(largest_difference(read_in_place, from_copies) <= 1e-5 * from_copies.cwiseAbs().maxCoeff());
      else  // bf16 and int8 convert either input into the same contiguous copy
        CHECK(read_in_place == from_copies);
    }
  }

  SECTION("kernels made for other widths are refused; no backward pass follows a fused evaluation") {
    OnednnInference fast(model, precision::fp32);
    combo_options narrower = o;
    narrower.width = 20;  // the same layer paths and inputs, fewer outputs
    Model<Combo> other(make_combo(narrower));
    other.build(inputs, 5);
    other.set_dense_kernels(&fast);
    CHECK_THROWS_WITH(other.predict(x, 256), Catch::Contains("made for 24 outputs, the layer has 20"));
    model.set_dense_kernels(&fast);
    pass_info eval;
    eval.phase = mode::eval;
    const matrix_f few = x.leftCols(4);
    model.forward(few, eval);
    CHECK_THROWS_WITH(model.backward(matrix_f::Ones(1, 4)), Catch::Contains("after an evaluation pass with dense kernels"));
    model.set_dense_kernels(nullptr);
    model.forward(few, eval);
    CHECK_NOTHROW(model.backward(matrix_f::Ones(1, 4)));  // the layers' own evaluation keeps what backward needs
  }
}
