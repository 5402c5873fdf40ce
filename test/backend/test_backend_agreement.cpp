// ThrustBackend against EigenBackend: the primitives of the backend contract one by one, then
// every layer and combinator built as the same model on both backends, which must start from
// identical weights and agree on outputs and on every gradient.
//
// The same file is the host test (g++, Thrust's OpenMP system) and, compiled by nvcc through
// test_backend_agreement.cu, the CUDA test; nothing in it depends on which.

#include <array>
#include <catch2/catch.hpp>

#include <strata/backend/eigen_backend.hpp>
#include <strata/backend/thrust_backend.hpp>
#include <strata/graph/fork.hpp>
#include <strata/graph/model.hpp>
#include <strata/graph/repeat.hpp>
#include <strata/graph/residual.hpp>
#include <strata/graph/sequential.hpp>
#include <strata/graph/shared.hpp>
#include <strata/graph/slice.hpp>
#include <strata/layers/activation.hpp>
#include <strata/layers/batch_norm.hpp>
#include <strata/layers/dense.hpp>
#include <strata/layers/dropout.hpp>
#include <strata/layers/identity.hpp>
#include <strata/layers/layer_norm.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

using namespace strata;

namespace {

using Host = EigenBackend<float>;
using Device = ThrustBackend<float>;
using hmat = host_matrix<float>;

/// A matrix of uniform values in [-1, 1), a pure function of (rows, cols, stream).
hmat random_matrix(Index rows, Index cols, std::uint64_t stream) {
  const random_stream rng(2024, purpose::user, stream);
  hmat m(rows, cols);
  for (Index k = 0; k < m.size(); ++k)
    m.data()[k] = static_cast<float>(2.0 * rng.uniform(static_cast<std::uint64_t>(k)) - 1.0);
  return m;
}

hmat to_host(const Device::matrix& m) {
  hmat h;
  Device::download(m, h);
  return h;
}

Device::matrix to_device(const hmat& h) {
  Device::matrix m;
  Device::upload(h, m);
  return m;
}

/// Empty when `got` agrees with `expected` to relative tolerance `rel`, else a description of
/// the worst element. The tolerance of an element is relative to its own magnitude plus a floor
/// of one tenth of that at the matrix's largest magnitude: an element that cancels to nearly zero
/// carries the rounding error of the terms it was summed from, not of its own size.
std::string mismatch(const hmat& expected, const hmat& got, double rel = 1e-5) {
  if (expected.rows() != got.rows() || expected.cols() != got.cols())
    return "shape " + shape_string(got.rows(), got.cols()) + " instead of " +
           shape_string(expected.rows(), expected.cols());
  const double scale = expected.size() == 0 ? 0.0 : static_cast<double>(expected.cwiseAbs().maxCoeff());
  double worst = 0.0;
  Index at = -1;
  for (Index k = 0; k < expected.size(); ++k) {
    const double a = expected.data()[k], b = got.data()[k];
    if (a == b) continue;
    const double excess = std::abs(a - b) / (rel * (std::max(std::abs(a), std::abs(b)) + 0.1 * scale));
    if (!(excess <= 1.0) && (at < 0 || !(excess <= worst))) {
      worst = excess;
      at = k;
    }
  }
  if (at < 0) return {};
  std::ostringstream out;
  out.precision(9);
  out << "element (" << at % expected.rows() << ", " << at / expected.rows() << "): expected "
      << expected.data()[at] << ", got " << got.data()[at] << " (matrix scale " << scale << ")";
  return out.str();
}

#define CHECK_AGREE(expected, got)                  \
  do {                                              \
    const std::string why_ = mismatch(expected, got); \
    INFO(why_);                                     \
    CHECK(why_.empty());                            \
  } while (false)

/// Builds `spec` as a model on both backends with the same seed and checks identical initial
/// weights, then runs forward and backward on batches of several sizes (shrinking, then growing
/// beyond the first, so buffer reuse is exercised) and compares outputs, input gradients,
/// parameter gradients and buffers.
template <class Spec>
void check_agreement(const Spec& spec, Index input_width, pass_info pass, std::uint64_t seed = 11) {
  Model<Spec, Host> reference(spec);
  Model<Spec, Device> tested(spec);
  reference.build(input_width, seed);
  tested.build(input_width, seed);
  REQUIRE(tested.output_width() == reference.output_width());

  auto& ref_params = reference.parameters();
  auto& params = tested.parameters();
  REQUIRE(params.size() == ref_params.size());
  for (std::size_t p = 0; p < params.size(); ++p) {
    INFO("parameter " << ref_params[p].name);
    CHECK(params[p].name == ref_params[p].name);
    CHECK(to_host(*params[p].value) == *ref_params[p].value);  // identical, not just close
  }
  REQUIRE(tested.buffers().size() == reference.buffers().size());

  std::uint64_t stream = 0;
  for (const Index batch : {Index{9}, Index{4}, Index{13}}) {
    INFO("batch of " << batch << ", step " << pass.step);
    const hmat x = random_matrix(input_width, batch, ++stream);
    const Device::matrix x_device = to_device(x);  // must outlive backward (the model keeps &x)
    CHECK_AGREE(reference.forward(x, pass), to_host(tested.forward(x_device, pass)));

    const hmat dy = random_matrix(reference.output_width(), batch, ++stream);
    const Device::matrix dy_device = to_device(dy);
    const hmat& dx_ref = reference.backward(dy, true);
    const hmat dx = to_host(tested.backward(dy_device, true));
    {
      INFO("input gradient");
      CHECK_AGREE(dx_ref, dx);
    }
    for (std::size_t p = 0; p < params.size(); ++p) {
      INFO("gradient of " << ref_params[p].name);
      CHECK_AGREE(*ref_params[p].gradient, to_host(*params[p].gradient));
    }
    for (std::size_t b = 0; b < tested.buffers().size(); ++b) {
      INFO("buffer " << reference.buffers()[b].name);
      CHECK_AGREE(*reference.buffers()[b].value, to_host(*tested.buffers()[b].value));
    }
    pass.step += 1;
    pass.first_sample += static_cast<std::uint64_t>(batch);
  }
}

pass_info training(std::uint64_t step = 3) {
  pass_info pass;
  pass.phase = mode::train;
  pass.step = step;
  pass.first_sample = 1000;
  return pass;
}

pass_info evaluation() {
  pass_info pass;
  pass.phase = mode::eval;
  return pass;
}

}  // namespace

// The architectures under test. They live at namespace scope because nvcc does not allow a
// device lambda in a template instantiated with a type local to a function.
namespace arch {
using dense = Dense<6>;
using activations = Sequential<Dense<6>, ReLU, Dense<5>, LeakyReLU, Dense<5>, ELU, Dense<4>, Sigmoid, Dense<4>, Tanh>;
using dropout_net = Sequential<Dense<7>, Dropout, Dense<3>>;
using fork = Fork<Branch<Dense<3>, Slice<0, 2>>, Branch<Sequential<Dense<4>, Tanh>, Slice<2, 5>>, Slice<1, 4>>;
using shared = Shared<Sequential<Dense<4>, ReLU, Dropout, Dense<2>>, Slice<0, 3>, Slice<3, 6>>;
using residual = Residual<Sequential<Dense<5>, ELU, Dense<5>>>;
using repeat = Repeat<3, Sequential<Dense<5>, Sigmoid, Dropout>>;
using batch_norm = Sequential<Dense<6>, BatchNorm, ReLU, Dense<3>>;
using layer_norm = Sequential<Dense<6>, LayerNorm, Tanh, Dense<3>>;
using drug_response = Sequential<
    Input<10>,
    Fork<Branch<Sequential<Dense<6>, ReLU, Dropout>, Slice<0, 4>>,
         Shared<Sequential<Dense<3>, LeakyReLU, Dropout>, Slice<4, 7>, Slice<7, 10>>>,
    Dense<8>, BatchNorm, ELU, Residual<Sequential<Dense<8>, LayerNorm, Tanh>>, Dropout,
    Repeat<2, Sequential<Dense<5>, Sigmoid>>, Dense<1>>;
}  // namespace arch

// --- The primitives ---------------------------------------------------------------------------

TEST_CASE("ThrustBackend names its device system") {
  const std::string name = Device::name();
#if STRATA_THRUST_CUDA
  CHECK(name == "thrust-cuda");
#elif THRUST_DEVICE_SYSTEM == THRUST_DEVICE_SYSTEM_OMP
  CHECK(name == "thrust-omp");
#else
  CHECK(name.rfind("thrust-", 0) == 0);
#endif
}

TEST_CASE("ThrustBackend upload, download, fill and copy round-trip exactly") {
  const hmat h = random_matrix(7, 5, 1);
  Device::matrix m = to_device(h);
  CHECK(m.rows() == 7);
  CHECK(m.cols() == 5);
  CHECK(m.size() == 35);
  CHECK(to_host(m) == h);

  Device::matrix c;
  Device::copy(m, c);
  CHECK(to_host(c) == h);
  Device::fill(m, 2.5f);
  CHECK(to_host(m) == hmat::Constant(7, 5, 2.5f));
  CHECK(to_host(c) == h);  // a deep copy

  Device::matrix empty;
  CHECK(to_host(empty).size() == 0);
  Device::copy(empty, c);
  CHECK(c.size() == 0);
}

TEST_CASE("device_matrix keeps its allocation when it shrinks") {
  Device::matrix m;
  Device::resize(m, 10, 20);
  const float* first = Device::data(m);
  CHECK(m.capacity() == 200);

  Device::resize(m, 5, 7);
  CHECK(m.rows() == 5);
  CHECK(m.cols() == 7);
  CHECK(m.size() == 35);
  CHECK(m.capacity() == 200);
  CHECK(Device::data(m) == first);

  Device::resize(m, 20, 10);  // back up to the capacity: still no allocation
  CHECK(Device::data(m) == first);

  Device::resize(m, 30, 10);
  CHECK(m.capacity() == 300);
  CHECK(m.size() == 300);

  CHECK_THROWS_AS(Device::resize(m, -1, 3), shape_error);
}

TEST_CASE("ThrustBackend for_each visits every index once, serially and in parallel") {
  for (const Index n : {Index{1}, Index{1000}, Index{1} << 17}) {
    INFO("n = " << n);
    Device::matrix m;
    Device::resize(m, n, 1);
    Device::fill(m, 0.0f);
    float* p = Device::data(m);
    Device::for_each(n, [p] STRATA_HD(Index i) { p[i] += static_cast<float>(i % 1024); });
    const hmat h = to_host(m);
    bool all = true;
    for (Index i = 0; i < n; ++i) all = all && h(i, 0) == static_cast<float>(i % 1024);
    CHECK(all);
  }
  Device::for_each(0, [] STRATA_HD(Index) {});  // an empty range launches nothing
}

TEST_CASE("for_each_element visits every (row, column) once and count counts, on both backends") {
  for (const auto& shape : {std::pair<Index, Index>{1, 1}, {7, 3}, {1000, 257}}) {
    const Index rows = shape.first, cols = shape.second;  // captured below: C++17 cannot capture bindings
    INFO(rows << " x " << cols);
    hmat expected(rows, cols);
    for (Index j = 0; j < cols; ++j)
      for (Index r = 0; r < rows; ++r) expected(r, j) = static_cast<float>(r * 3 + j * 1000);
    Device::matrix m;
    Device::resize(m, rows, cols);
    Device::fill(m, -1.0f);
    float* p = Device::data(m);
    Device::for_each_element(rows, cols, [p, rows] STRATA_HD(Index r, Index j) { p[j * rows + r] += static_cast<float>(r * 3 + j * 1000) + 1.0f; });
    CHECK(to_host(m) == expected);
    hmat h = hmat::Constant(rows, cols, -1.0f);
    float* q = h.data();
    Host::for_each_element(rows, cols, [q, rows](Index r, Index j) { q[j * rows + r] += static_cast<float>(r * 3 + j * 1000) + 1.0f; });
    CHECK(h == expected);
    // Elements divisible by 7 (r = 0 included in every column): the same count on both.
    Index want = 0;
    for (Index i = 0; i < expected.size(); ++i) want += static_cast<Index>(expected.data()[i]) % 7 == 0 ? 1 : 0;
    const float* c = Device::data(m);
    CHECK(Device::count(rows * cols, [c] STRATA_HD(Index i) { return static_cast<Index>(c[i]) % 7 == 0; }) == want);
    CHECK(Host::count(rows * cols, [q](Index i) { return static_cast<Index>(q[i]) % 7 == 0; }) == want);
  }
  CHECK(Device::count(0, [] STRATA_HD(Index) { return true; }) == 0);
  CHECK(Host::count(0, [](Index) { return true; }) == 0);
}

TEST_CASE("ThrustBackend sum accumulates in double") {
  for (const Index n : {Index{0}, Index{1}, Index{777}, Index{1} << 17}) {
    INFO("n = " << n);
    const hmat h = random_matrix(n, 1, 5);
    const Device::matrix m = to_device(h);
    const float* p = Device::data(m);
    double expected = 0.0;
    for (Index i = 0; i < n; ++i) expected += static_cast<double>(h(i, 0));
    const double got = Device::sum(n, [p] STRATA_HD(Index i) { return p[i]; });
    CHECK(got == Approx(expected).epsilon(1e-12).margin(1e-12));
  }
  // Terms that would be lost in float: 2^24 + 1 + 1 + ... is exact only in double.
  const double big = Device::sum(1001, [] STRATA_HD(Index i) { return i == 0 ? 16777216.0f : 1.0f; });
  CHECK(big == 16777216.0 + 1000.0);
}

TEST_CASE("ThrustBackend gemm matches Eigen for every transpose combination") {
  const Index m = 7, k = 5, n = 3;
  for (const bool ta : {false, true}) {
    for (const bool tb : {false, true}) {
      INFO("transpose a: " << ta << ", transpose b: " << tb);
      const hmat a = ta ? random_matrix(k, m, 1) : random_matrix(m, k, 1);
      const hmat b = tb ? random_matrix(n, k, 2) : random_matrix(k, n, 2);
      const Device::matrix a_d = to_device(a), b_d = to_device(b);

      {
        INFO("beta = 0 overwrites and resizes c, ignoring its content");
        hmat c_ref;
        Host::gemm(0.5f, a, ta, b, tb, 0.0f, c_ref);
        Device::matrix c;
        Device::resize(c, 30, 1);  // large enough to be reused, so c starts out full of NaN
        Device::fill(c, std::numeric_limits<float>::quiet_NaN());
        Device::gemm(0.5f, a_d, ta, b_d, tb, 0.0f, c);
        CHECK(c.rows() == m);
        CHECK(c.cols() == n);
        CHECK_AGREE(c_ref, to_host(c));
      }
      for (const float beta : {0.75f, 1.0f}) {
        INFO("beta = " << beta << " accumulates into c");
        const hmat c0 = random_matrix(m, n, 3);
        hmat c_ref = c0;
        Host::gemm(-1.5f, a, ta, b, tb, beta, c_ref);
        Device::matrix c = to_device(c0);
        Device::gemm(-1.5f, a_d, ta, b_d, tb, beta, c);
        CHECK_AGREE(c_ref, to_host(c));
      }
    }
  }
}

TEST_CASE("ThrustBackend gemm on sizes that span several blocks") {
  const hmat a = random_matrix(300, 129, 6), b = random_matrix(129, 67, 7);
  hmat c_ref;
  Host::gemm(1.0f, a, false, b, false, 0.0f, c_ref);
  Device::matrix c;
  Device::gemm(1.0f, to_device(a), false, to_device(b), false, 0.0f, c);
  CHECK_AGREE(c_ref, to_host(c));

  hmat g_ref;  // the weight-gradient shape of a dense layer: dy x^T
  Host::gemm(1.0f, c_ref, false, b, true, 0.0f, g_ref);
  Device::matrix g;
  Device::gemm(1.0f, c, false, to_device(b), true, 0.0f, g);
  CHECK_AGREE(g_ref, to_host(g));
}

TEST_CASE("EigenBackend gemm (oneDNN, BLAS or Eigen) is the textbook product for every transpose and beta") {
  // A small product, and one large enough for the engines' blocked kernels and remainders.
  const auto [m, k, n] = GENERATE(std::array<Index, 3>{9, 6, 4}, std::array<Index, 3>{67, 301, 45});
  INFO(m << " x " << k << " by " << k << " x " << n);
  for (const bool ta : {false, true}) {
    for (const bool tb : {false, true}) {
      INFO("transpose a: " << ta << ", transpose b: " << tb);
      const hmat a = ta ? random_matrix(k, m, 1) : random_matrix(m, k, 1);
      const hmat b = tb ? random_matrix(n, k, 2) : random_matrix(k, n, 2);
      const hmat c0 = random_matrix(m, n, 3);
      // alpha = 1, beta = 0 with A transposed is the dense layer's input gradient, which oneDNN
      // builds run on a matmul primitive of their own (backend/onednn_gemm.hpp).
      for (const auto& [alpha, beta] : {std::pair{-1.5f, 0.0f}, std::pair{1.0f, 0.0f}, std::pair{-1.5f, 0.75f},
                                       std::pair{-1.5f, 1.0f}}) {
        INFO("alpha = " << alpha << ", beta = " << beta);
        hmat c = beta == 0.0f ? hmat::Constant(m, n, std::numeric_limits<float>::quiet_NaN()) : c0;
        Host::gemm(alpha, a, ta, b, tb, beta, c);
        REQUIRE(c.rows() == m);
        REQUIRE(c.cols() == n);
        for (Index i = 0; i < m; ++i)
          for (Index j = 0; j < n; ++j) {
            double sum = 0.0, magnitude = 0.0;
            for (Index p = 0; p < k; ++p) {
              const double term = double(ta ? a(p, i) : a(i, p)) * double(tb ? b(j, p) : b(p, j));
              sum += term;
              magnitude += std::abs(term);
            }
            const double want = double(alpha) * sum + (beta == 0.0f ? 0.0 : double(beta) * double(c0(i, j)));
            // Float summation in any order and blocking errs by at most about (k + 2) u sum|a b|
            // (u = 2^-24): the bound every engine must meet, whatever order it adds in.
            const double bound =
                (double(k) + 2) * 0x1p-24 * (std::abs(double(alpha)) * magnitude + std::abs(double(beta) * double(c0(i, j))));
            CHECK(std::abs(double(c(i, j)) - want) <= bound + 1e-7);
          }
      }
    }
  }
  hmat c;
  CHECK_THROWS_AS(Host::gemm(1.0f, random_matrix(4, 3, 1), false, random_matrix(4, 2, 2), false, 0.0f, c), shape_error);
  c.resize(2, 2);
  CHECK_THROWS_AS(Host::gemm(1.0f, random_matrix(4, 3, 1), true, random_matrix(4, 2, 2), false, 1.0f, c), shape_error);
}

TEST_CASE("ThrustBackend gemm rejects operands that do not fit") {
  const Device::matrix a = to_device(random_matrix(4, 3, 1)), b = to_device(random_matrix(4, 2, 2));
  Device::matrix c;
  CHECK_THROWS_AS(Device::gemm(1.0f, a, false, b, false, 0.0f, c), shape_error);
  Device::resize(c, 2, 2);
  CHECK_THROWS_AS(Device::gemm(1.0f, a, true, b, false, 1.0f, c), shape_error);  // c must be 3x2
}

TEST_CASE("repeat_column and row_sum: the dense layer's bias kernels agree on both backends") {
  const hmat bias = random_matrix(6, 1, 2);
  hmat y_ref;
  Host::repeat_column(bias, 11, y_ref);
  REQUIRE(y_ref.rows() == 6);
  REQUIRE(y_ref.cols() == 11);
  for (Index j = 0; j < 11; ++j) CHECK(y_ref.col(j) == bias.col(0));
  Device::matrix y;
  Device::repeat_column(to_device(bias), 11, y);
  CHECK_AGREE(y_ref, to_host(y));
  CHECK_THROWS_AS(Device::repeat_column(to_device(random_matrix(5, 2, 3)), 4, y), shape_error);
  CHECK_THROWS_AS(Host::repeat_column(random_matrix(5, 2, 3), 4, y_ref), shape_error);

  // Small, and large enough to be split across threads in blocks of rows (300 is no multiple of
  // the block): every row summed in column order.
  for (const Index rows : {Index{6}, Index{300}}) {
    const hmat x = random_matrix(rows, 257, 4);
    hmat s_ref;
    Host::row_sum(x, s_ref);
    REQUIRE(s_ref.rows() == rows);
    for (Index i = 0; i < rows; ++i) {
      float total = x(i, 0);
      for (Index j = 1; j < x.cols(); ++j) total += x(i, j);
      CHECK(s_ref(i, 0) == total);
    }
    Device::matrix s;
    Device::row_sum(to_device(x), s);
    CHECK(s.rows() == rows);
    CHECK(s.cols() == 1);
    CHECK_AGREE(s_ref, to_host(s));
  }
}

TEST_CASE("A non-finite value is reported the same way on both backends") {
  hmat x = random_matrix(5, 4, 1);
  x(2, 3) = std::numeric_limits<float>::quiet_NaN();
  pass_info pass;
  pass.check_finite = true;
  Model<arch::dense, Host> reference;
  Model<arch::dense, Device> tested;
  reference.build(5, 1);
  tested.build(5, 1);
  const Device::matrix x_device = to_device(x);
  CHECK_THROWS_AS(reference.forward(x, pass), numeric_error);
  CHECK_THROWS_AS(tested.forward(x_device, pass), numeric_error);
}

// --- Layers and combinators -------------------------------------------------------------------

TEST_CASE("Backends agree: Dense") {
  check_agreement(arch::dense{}, 5, training());
  check_agreement(Dense<>{7, Init::glorot_uniform}, 4, training());
  check_agreement(Dense<>{3, Init::he_uniform, false}, 6, training());
}

TEST_CASE("Backends agree: ReLU, LeakyReLU, ELU, Sigmoid, Tanh alone") {
  check_agreement(ReLU{}, 6, training());
  check_agreement(LeakyReLU{0.2}, 6, training());
  check_agreement(ELU{0.7}, 6, training());
  check_agreement(Sigmoid{}, 6, training());
  check_agreement(Tanh{}, 6, training());
}

TEST_CASE("Backends agree: activations between dense layers") {
  check_agreement(arch::activations{}, 5, training());
}

TEST_CASE("Backends agree: Dropout in training and evaluation") {
  check_agreement(Dropout{0.3}, 6, training());
  check_agreement(Dropout{0.3}, 6, evaluation());
  check_agreement(Dropout{0.3, Dropout::when::always}, 6, evaluation());
  check_agreement(arch::dropout_net{}, 5, training());
  check_agreement(arch::dropout_net{}, 5, evaluation());
}

TEST_CASE("Backends agree: Identity and Input") {
  check_agreement(Identity{}, 4, training());
  check_agreement(Input<4>{}, 4, training());
}

TEST_CASE("Backends agree: Slice, Branch and Fork") {
  check_agreement(Slice<1, 4>{}, 5, training());
  check_agreement(Slice<>{2, 5}, 6, training());
  check_agreement(Branch<Dense<3>, Slice<1, 4>>{}, 5, training());
  check_agreement(arch::fork{}, 5, training());
}

TEST_CASE("Backends agree: Shared") {
  check_agreement(arch::shared{}, 6, training());
  check_agreement(arch::shared{}, 6, evaluation());
}

TEST_CASE("Backends agree: Residual") {
  check_agreement(arch::residual{}, 5, training());
}

TEST_CASE("Backends agree: Repeat") {
  check_agreement(arch::repeat{}, 5, training());
}

TEST_CASE("Backends agree: BatchNorm in training and evaluation") {
  check_agreement(BatchNorm{}, 5, training());
  check_agreement(BatchNorm{}, 5, evaluation());
  // Without the dense bias: batch normalisation removes it, so its gradient is exactly zero in
  // exact arithmetic and pure rounding noise in floating point, which cannot be compared.
  const arch::batch_norm net{Dense<6>{6, Init::he_normal, false}, BatchNorm{}, ReLU{}, Dense<3>{}};
  check_agreement(net, 5, training());
  check_agreement(net, 5, evaluation());
}

TEST_CASE("Backends agree: LayerNorm") {
  check_agreement(LayerNorm{}, 5, training());
  check_agreement(arch::layer_norm{}, 5, training());
}

TEST_CASE("Backends agree: a Sequential model using every kind of layer") {
  arch::drug_response net;
  std::get<2>(net.layers).bias = false;  // feeds BatchNorm (see the BatchNorm test)
  check_agreement(net, 10, training());
  check_agreement(net, 10, evaluation());
}

TEST_CASE("Backends agree on predictions in chunks") {
  arch::drug_response net;
  std::get<2>(net.layers).bias = false;
  Model<arch::drug_response, Host> reference(net);
  Model<arch::drug_response, Device> tested(net);
  reference.build(10, 5);
  tested.build(10, 5);
  const hmat x = random_matrix(10, 50, 9);
  CHECK_AGREE(reference.predict(x, 16), tested.predict(x, 16));
}
