// SparseInputDense: the dense layer computed from the input's non-zeros. It must be the same
// function as Dense (same initial weights, outputs and gradients) on sparse binary fingerprints,
// on count vectors and on dense input, and do work in proportion to the non-zeros.
#include <catch2/catch.hpp>

#include <strata/strata.hpp>
#include <strata/layers/sparse_input_dense.hpp>

#include "../support/gradient_check.hpp"

#include <vector>
#if defined(_OPENMP)
#include <omp.h>
#endif

using namespace strata;

namespace {

using B = EigenBackend<double>;
using SparseNet = Sequential<SparseInputDense<>, ReLU, Dense<1>>;
using DenseNet = Sequential<Dense<>, ReLU, Dense<1>>;

/// `rows x cols` inputs with about `density` of the entries set: to 1, or to small counts.
matrix_d sparse_input(Index rows, Index cols, double density, bool counts, std::uint64_t seed) {
  const random_stream rng(seed, purpose::user);
  matrix_d x = matrix_d::Zero(rows, cols);
  for (Index k = 0; k < x.size(); ++k) {
    const auto u = static_cast<std::uint64_t>(k);
    if (rng.uniform(2 * u) < density) x.data()[k] = counts ? 1.0 + std::floor(4.0 * rng.uniform(2 * u + 1)) : 1.0;
  }
  return x;
}

void check_same_as_dense(const matrix_d& x, bool with_bias, Index width = 24) {
  Model<SparseNet, B> sparse(SparseNet{SparseInputDense<>{width, Init::he_normal, with_bias}, ReLU{}, Dense<1>{}});
  Model<DenseNet, B> dense(DenseNet{Dense<>{width, Init::he_normal, with_bias}, ReLU{}, Dense<1>{}});
  sparse.build(x.rows(), 5);
  dense.build(x.rows(), 5);
  REQUIRE(sparse.parameters().size() == dense.parameters().size());
  // Non-zero biases, so the bias path is exercised.
  for (std::size_t k = 0; k < sparse.parameters().size(); ++k) {
    CHECK(*sparse.parameters()[k].value == *dense.parameters()[k].value);  // same initialisation
    const matrix_d shift = 0.1 * strata::testing::random_matrix(sparse.parameters()[k].value->rows(), sparse.parameters()[k].value->cols(), 40 + k);
    *sparse.parameters()[k].value += shift;
    *dense.parameters()[k].value += shift;
  }
  const matrix_d ys = sparse.forward(x), yd = dense.forward(x);
  CHECK((ys - yd).cwiseAbs().maxCoeff() < 1e-12);
  const matrix_d dy = strata::testing::random_matrix(1, x.cols(), 9);
  const matrix_d dxs = sparse.backward(dy, true), dxd = dense.backward(dy, true);
  CHECK((dxs - dxd).cwiseAbs().maxCoeff() < 1e-12);
  for (std::size_t k = 0; k < sparse.parameters().size(); ++k) {
    INFO(sparse.parameters()[k].name);
    CHECK((*sparse.parameters()[k].gradient - *dense.parameters()[k].gradient).cwiseAbs().maxCoeff() < 1e-12);
  }
}

}  // namespace

TEST_CASE("SparseInputDense computes exactly what Dense computes") {
  SECTION("on fingerprint-like binary input (3% of 256 bits)") { check_same_as_dense(sparse_input(256, 40, 0.03, false, 1), true); }
  SECTION("on count vectors, without bias") { check_same_as_dense(sparse_input(256, 40, 0.05, true, 2), false); }
  SECTION("on samples with no bits set at all") { check_same_as_dense(matrix_d::Zero(64, 7), true); }
  SECTION("on dense input") { check_same_as_dense(strata::testing::random_matrix(30, 12, 3), true); }
  // The output is summed in register tiles of a few SIMD packets and the non-zeros are found 64
  // inputs at a time: a width of 37 ends in a partial tile, 200 inputs in a partial word.
  SECTION("with a partial output tile and a partial input word") {
    check_same_as_dense(sparse_input(200, 70, 0.05, true, 5), true, 37);
    check_same_as_dense(sparse_input(200, 70, 0.05, true, 6), false, 37);
  }
}

TEST_CASE("SparseInputDense in single precision matches Dense at the fingerprint model's size") {
  // 2,048 bits -> 1,000: whole register tiles of floats and a partial last one.
  using F = EigenBackend<float>;
  using SparseLayer = Sequential<SparseInputDense<>>;
  using DenseLayer = Sequential<Dense<>>;
  Model<SparseLayer, F> sparse(SparseLayer{SparseInputDense<>{1000}});
  Model<DenseLayer, F> dense(DenseLayer{Dense<>{1000}});
  sparse.build(2048, 3);
  dense.build(2048, 3);
  *sparse.parameters()[1].value = matrix_f::Constant(1000, 1, 0.25f);
  *dense.parameters()[1].value = matrix_f::Constant(1000, 1, 0.25f);
  const matrix_f x = sparse_input(2048, 96, 0.03, true, 7).cast<float>();
  const matrix_f ys = sparse.forward(x), yd = dense.forward(x);
  CHECK(ys.rows() == 1000);
  CHECK((ys - yd).cwiseAbs().maxCoeff() < 1e-4f * (1.0f + yd.cwiseAbs().maxCoeff()));
  // The weight gradient, summed in the same register tiles.
  const matrix_f dy = strata::testing::random_matrix(1000, 96, 8).cast<float>();
  sparse.backward(dy, false);
  dense.backward(dy, false);
  for (std::size_t k = 0; k < 2; ++k) {
    const matrix_f& gs = *sparse.parameters()[k].gradient;
    const matrix_f& gd = *dense.parameters()[k].gradient;
    CHECK((gs - gd).cwiseAbs().maxCoeff() < 1e-4f * (1.0f + gd.cwiseAbs().maxCoeff()));
  }
}

#if defined(_OPENMP)
TEST_CASE("The sparse layer, dropout and row sums give the same bits on 1 and on 2 threads") {
  // Large enough for every parallel loop to split (batch >= 64, >= 2^16 elements). No GEMM here:
  // OpenBLAS and Eigen block their sums by thread count, so their last bits may differ.
  using F = EigenBackend<float>;
  using Net = Sequential<SparseInputDense<>, ReLU, Dropout>;
  const matrix_f x = sparse_input(2048, 300, 0.03, false, 11).cast<float>();
  const matrix_f dy = strata::testing::random_matrix(1000, 300, 12).cast<float>();
  const int threads = omp_get_max_threads();
  std::vector<matrix_f> results[2];
  for (int run = 0; run < 2; ++run) {
    omp_set_num_threads(run == 0 ? 1 : std::max(2, threads));
    Model<Net, F> model(Net{SparseInputDense<>{1000}, ReLU{}, Dropout{0.2}});
    model.build(2048, 13);
    pass_info train;
    train.step = 3;
    results[run].push_back(model.forward(x, train));
    model.backward(dy, false);
    for (const auto& p : model.parameters()) results[run].push_back(*p.gradient);  // weight: tiles; bias: row sums
  }
  omp_set_num_threads(threads);
  REQUIRE(results[0].size() == 3);
  for (std::size_t k = 0; k < results[0].size(); ++k) {
    INFO("result " << k << ", largest difference " << (results[0][k] - results[1][k]).cwiseAbs().maxCoeff());
    CHECK((results[0][k].array() == results[1][k].array()).all());
  }
}
#endif

TEST_CASE("SparseInputDense gradients match finite differences") {
  strata::testing::check_gradients(SparseNet{SparseInputDense<>{6}, ReLU{}, Dense<1>{}}, 9, 5);
}

TEST_CASE("SparseInputDense visits only the non-zeros and rejects a wrong input width") {
  using L = sparse_input_dense_layer<B>;
  L layer(SparseInputDense<>{16});
  std::uint64_t ids = 0;
  build_context ctx(1, ids, "fp");
  layer.build(ctx, 2048);
  const matrix_d x = sparse_input(2048, 100, 0.03, false, 4);
  layer.forward(x, pass_info{});
  CHECK(layer.nonzeros() == static_cast<Index>(x.sum()));
  CHECK(layer.nonzeros() < 2048 * 100 / 20);  // ~3%: a twentieth of the dense work at most
  CHECK_THROWS_WITH(layer.forward(matrix_d::Zero(100, 3), pass_info{}),
                    Catch::Matchers::Contains("layer 'fp': expects input of 2048 rows, got 100x3"));
}

// --- int8 evaluation (layers/sparse_int8.hpp) ----------------------------------------------------

namespace {

using F = EigenBackend<float>;
using FloatLayer = sparse_input_dense_layer<F>;

/// Kernels that ask sparse layers for int8 and leave every Dense layer its own product.
struct sparse_in_int8 : dense_kernels {
  bool answer = true;
  bool forward(const std::string&, const host_matrix<float>&, host_matrix<float>&) override { return false; }
  bool quantize_sparse(const std::string&) override { return answer; }
};

/// A built float layer of `width` rows over `inputs` inputs with a non-zero bias.
FloatLayer float_layer(Index width, Index inputs, std::uint64_t seed) {
  FloatLayer layer(SparseInputDense<>{width});
  std::uint64_t ids = 0;
  build_context ctx(seed, ids, "fp");
  layer.build(ctx, inputs);
  layer.for_each_parameter([&](auto p) {
    if (p.name == "fp.bias") *p.value = strata::testing::random_matrix(width, 1, seed + 1).cast<float>();
  });
  return layer;
}

matrix_f parameter_of(FloatLayer& layer, const std::string& name) {
  matrix_f out;
  layer.for_each_parameter([&](auto p) {
    if (p.name == name) out = *p.value;
  });
  return out;
}

/// The int8 arithmetic of sparse_int8.hpp's file comment, written out plainly (no packing, no
/// tiles, no groups of four): what the layer must compute to the bit for quantisable samples.
matrix_f int8_reference(const matrix_f& w, const matrix_f& bias, const matrix_f& x) {
  const Index rows = w.rows(), inputs = w.cols();
  std::vector<float> scale(static_cast<std::size_t>(rows));
  for (Index r = 0; r < rows; ++r) {
    const float largest = w.row(r).cwiseAbs().maxCoeff();
    scale[static_cast<std::size_t>(r)] = largest > 0.0f ? largest / 127.0f : 1.0f;
  }
  matrix_f y(rows, x.cols());
  for (Index j = 0; j < x.cols(); ++j) {
    const float largest = x.col(j).maxCoeff();
    float m = 1.0f;
    if (largest > 0.0f) m = 255.0f / largest >= 1.0f ? std::floor(255.0f / largest) : 255.0f / largest;
    for (Index r = 0; r < rows; ++r) {
      std::int32_t sum = 0;
      for (Index i = 0; i < inputs; ++i) {
        const auto xq = static_cast<std::int32_t>(std::min(255.0f, std::nearbyint(x(i, j) * m)));
        const auto wq = static_cast<std::int32_t>(std::max(-127.0f, std::min(127.0f, std::nearbyint(w(r, i) / scale[static_cast<std::size_t>(r)]))));
        sum += xq * wq;
      }
      y(r, j) = std::fma(static_cast<float>(sum), scale[static_cast<std::size_t>(r)] * (1.0f / m), bias(r));
    }
  }
  return y;
}

bool int8_runs_here() {
  if (!sparse_int8_available) WARN("SparseInputDense int8 not tested: this build has no AVX512_VNNI");
  return sparse_int8_available;
}

}  // namespace

TEST_CASE("In int8, SparseInputDense computes the quantised sum to the bit, whatever the tiles and groups") {
  if (!int8_runs_here()) return;
  // 150 rows: two whole tiles of 64 and a partial one. Counts at 5% of 300 inputs, so samples
  // end in partial groups of four; a batch of 70 splits over threads.
  FloatLayer layer = float_layer(150, 300, 21);
  matrix_f x = sparse_input(300, 70, 0.05, true, 22).cast<float>();
  x.col(1).setZero();                  // nothing set: the bias
  x.col(2).setZero();
  x(17, 2) = 3.0f;                     // one non-zero: a group of one and three of padding
  x.col(3) *= 0.37f;                   // fractions: the input scale is not an integer
  x.col(4) *= 900.0f;                  // beyond 255: scaled down
  x(5, 5) = 1e-30f;                    // tiny beside 1
  sparse_in_int8 kernels;
  pass_info eval;
  eval.phase = mode::eval;
  eval.kernels = &kernels;
  const matrix_f y = layer.forward(x, eval);
  const matrix_f expected = int8_reference(parameter_of(layer, "fp.weight"), parameter_of(layer, "fp.bias"), x);
  for (Index j = 0; j < x.cols(); ++j) {
    INFO("sample " << j << ", largest difference " << (y.col(j) - expected.col(j)).cwiseAbs().maxCoeff());
    CHECK((y.col(j).array() == expected.col(j).array()).all());
  }
  CHECK((y.col(1) - parameter_of(layer, "fp.bias")).cwiseAbs().maxCoeff() == 0.0f);

  SECTION("samples it cannot quantise are computed in fp32") {
    matrix_f odd = x.leftCols(3);
    odd(40, 0) = -1.0f;                                // a negative input
    odd(41, 1) = std::numeric_limits<float>::infinity();
    odd(42, 2) = std::nanf("");
    const matrix_f z = layer.forward(odd, eval);
    const matrix_f fp32 = layer.forward(odd, pass_info{});
    CHECK((z.col(0) - fp32.col(0)).cwiseAbs().maxCoeff() < 1e-5f);
    CHECK(z.col(1).array().isInf().any());
    CHECK(z.col(2).array().isNaN().all());
  }
  SECTION("a kernel set that does not ask for int8 leaves the layer in fp32") {
    kernels.answer = false;
    const matrix_f z = layer.forward(x, eval);
    CHECK((z.array() == layer.forward(x, pass_info{}).array()).all());
    CHECK((z.array() != y.array()).any());
  }
}

TEST_CASE("In int8, a fingerprint's outputs are within the weights' rounding of fp32, and batch-independent") {
  if (!int8_runs_here()) return;
  FloatLayer layer = float_layer(1000, 2048, 31);
  const matrix_f x = sparse_input(2048, 96, 0.03, true, 32).cast<float>();  // counts 1-4: exact in uint8
  sparse_in_int8 kernels;
  pass_info eval;
  eval.phase = mode::eval;
  eval.kernels = &kernels;
  const matrix_f y = layer.forward(x, eval);
  const matrix_f fp32 = layer.forward(x, pass_info{});
  const matrix_f w = parameter_of(layer, "fp.weight");
  // Each weight moves by at most half a step of max|W_r| / 127; the inputs are exact.
  double worst = 0.0;
  for (Index j = 0; j < x.cols(); ++j)
    for (Index r = 0; r < w.rows(); ++r) {
      const double bound = 0.5 * w.row(r).cwiseAbs().maxCoeff() / 127.0 * x.col(j).sum() * 1.001 + 1e-5 * (1.0 + std::abs(fp32(r, j)));
      worst = std::max(worst, std::abs(double(y(r, j)) - double(fp32(r, j))) / bound);
    }
  CHECK(worst <= 1.0);
  CHECK((y - fp32).cwiseAbs().maxCoeff() > 1e-5f);  // and it does round
  // Scales come from the weights and the sample alone: any sample scores the same alone.
  for (Index j : {Index{0}, Index{37}, Index{95}}) {
    const matrix_f alone = layer.forward(x.col(j), eval);
    CHECK((alone.col(0).array() == y.col(j).array()).all());
  }
}

TEST_CASE("In int8, SparseInputDense re-quantises its weights unless the pass promises they are unchanged") {
  if (!int8_runs_here()) return;
  FloatLayer layer = float_layer(70, 200, 41);
  const matrix_f x = sparse_input(200, 8, 0.05, true, 42).cast<float>();
  sparse_in_int8 kernels;
  pass_info eval;
  eval.phase = mode::eval;
  eval.kernels = &kernels;
  const matrix_f before = layer.forward(x, eval);
  layer.forward(x, pass_info{});  // an fp32 pass in between
  layer.for_each_parameter([](auto p) {
    if (p.name == "fp.weight") p.value->array() *= -0.5f;
  });
  const matrix_f after = layer.forward(x, eval);
  CHECK((after.array() != before.array()).any());
  CHECK((after.array() == int8_reference(parameter_of(layer, "fp.weight"), parameter_of(layer, "fp.bias"), x).array()).all());
  pass_info same = eval;
  same.parameters_unchanged = true;
  CHECK((layer.forward(x, same).array() == after.array()).all());
}

TEST_CASE("In evaluation, SparseInputDense and the ReLU after it run as one pass, with the same bits") {
  FloatLayer layer = float_layer(150, 700, 51);  // 150 rows: two whole tiles and a partial one
  matrix_f x = sparse_input(700, 90, 0.05, true, 52).cast<float>();
  x(3, 7) = -x(3, 7) - 1.0f;  // a negative input: int8 evaluates that sample in fp32
  sparse_in_int8 kernels;
  for (const bool int8 : {false, true}) {
    CAPTURE(int8);
    if (int8 && !int8_runs_here()) continue;
    pass_info eval;
    eval.phase = mode::eval;
    eval.kernels = int8 ? &kernels : nullptr;
    const matrix_f plain = layer.forward(x, eval);
    CHECK((plain.array() < 0.0f).count() > 0);  // something to rectify
    const matrix_f expected = plain.unaryExpr([](float v) { return activation::relu{}.value(v); });
    const matrix_f fused = layer.forward_rectified(x, eval);
    CHECK((fused.array() == expected.array()).all());
  }

  SECTION("in a model, the fused pass gives what the layers give one by one") {
    Model<SparseNet, F> model(SparseNet{SparseInputDense<>{150}, ReLU{}, Dense<1>{}});
    model.build(700, 53);
    pass_info eval;
    eval.phase = mode::eval;
    const matrix_f fused = model.forward(x, eval);
    eval.check_finite = true;  // checking every layer's output runs them one by one
    const matrix_f separate = model.forward(x, eval);
    CHECK((fused.array() == separate.array()).all());
  }
}
