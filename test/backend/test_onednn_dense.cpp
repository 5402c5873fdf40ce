// onednn_dense: a dense layer's evaluation-mode product on oneDNN in fp32, bf16 and int8, each
// against the product in double within the error its rounding allows.

#include <catch2/catch.hpp>

#include <strata/backend/onednn_dense.hpp>
#include <strata/core/random.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

using namespace strata;

namespace {

/// A `rows x inputs` weight matrix, a bias and an `inputs x samples` batch (column-major), seeded.
struct layer_case {
  Index rows = 37, inputs = 101, samples = 53;
  std::vector<float> weight, bias, x;

  explicit layer_case(bool nonnegative_input, std::uint64_t seed = 5) {
    const random_stream rng(seed, purpose::user);
    std::uint64_t k = 0;
    auto normal = [&] { return static_cast<float>(rng.normal(k++)); };
    for (Index i = 0; i < rows * inputs; ++i) weight.push_back(0.1f * normal());
    for (Index i = 0; i < rows; ++i) bias.push_back(normal());
    for (Index i = 0; i < inputs * samples; ++i) x.push_back(nonnegative_input ? std::abs(normal()) : normal());
  }
  float input_range() const {
    float r = 0.0f;
    for (float v : x) r = std::max(r, std::abs(v));
    return r;
  }
  /// y(r, j) in double, with |W| |x| summed alongside (the scale of rounding errors).
  double product(Index r, Index j, double* magnitude = nullptr) const {
    double sum = bias[static_cast<std::size_t>(r)], size = 0.0;
    for (Index c = 0; c < inputs; ++c) {
      const double w = weight[static_cast<std::size_t>(c * rows + r)], v = x[static_cast<std::size_t>(j * inputs + c)];
      sum += w * v;
      size += std::abs(w * v);
    }
    if (magnitude != nullptr) *magnitude = size;
    return sum;
  }
  std::vector<float> run(onednn_dense& kernel, Index n) const {
    std::vector<float> y(static_cast<std::size_t>(rows * n), std::nanf(""));
    kernel.forward(x.data(), n, y.data());
    return y;
  }
};

/// Whether `p` runs on this machine; says so in the test's output when not.
bool runs_here(precision p) {
  const std::string why = precision_unavailable(p);
  if (!why.empty()) WARN(to_string(p) << " not tested: " << why);
  return why.empty();
}

/// fp32's bound: (inputs + 2) roundings of 2^-24 of the sum's magnitude, with slack.
double fp32_allowed(const layer_case& c, Index r, Index j) {
  double size;
  c.product(r, j, &size);
  return 1e-5 * (size + 1.0);
}

/// The largest error of the kernel's `n` outputs over what `allowed(r, j)` permits (<= 1: within).
template <class Allowed>
double worst_ratio(const layer_case& c, const std::vector<float>& y, Index n, Allowed allowed) {
  double worst = 0.0;
  for (Index j = 0; j < n; ++j)
    for (Index r = 0; r < c.rows; ++r) {
      const double error = std::abs(y[static_cast<std::size_t>(j * c.rows + r)] - c.product(r, j));
      worst = std::max(worst, error / allowed(r, j));
    }
  return worst;
}

}  // namespace

TEST_CASE("fp32 is the dense layer's product, at any batch size") {
  const layer_case c(false);
  onednn_dense kernel(c.weight.data(), c.rows, c.inputs, c.bias.data(), precision::fp32);
  const auto y = c.run(kernel, c.samples);
  CHECK(worst_ratio(c, y, c.samples, [&](Index r, Index j) { return fp32_allowed(c, r, j); }) <= 1.0);
  SECTION("without a bias") {
    onednn_dense no_bias(c.weight.data(), c.rows, c.inputs, nullptr, precision::fp32);
    const auto y = c.run(no_bias, c.samples);
    CHECK(std::abs(y[0] - (c.product(0, 0) - c.bias[0])) < 1e-4);
  }
}

TEST_CASE("Every precision gives the same results whatever the order of batch sizes") {
  // Plans are cached per batch size (at most 4, the least recently used dropped): sizes that come
  // back after others, and more sizes than the cache holds, must give what a fresh kernel gives.
  for (precision p : {precision::fp32, precision::bf16, precision::int8}) {
    if (!runs_here(p)) continue;
    CAPTURE(to_string(p));
    const layer_case c(false);
    onednn_dense kernel(c.weight.data(), c.rows, c.inputs, c.bias.data(), p, c.input_range());
    for (Index n : {c.samples, Index{1}, c.samples - 3, c.samples, Index{2}, Index{3}, Index{4}, c.samples, Index{1}}) {
      CAPTURE(n);
      onednn_dense fresh(c.weight.data(), c.rows, c.inputs, c.bias.data(), p, c.input_range());
      CHECK(c.run(kernel, n) == c.run(fresh, n));
    }
  }
}

TEST_CASE("With the ReLU fused, every precision gives max(product, 0) to the bit") {
  for (precision p : {precision::fp32, precision::bf16, precision::int8}) {
    if (!runs_here(p)) continue;
    CAPTURE(to_string(p));
    const layer_case c(false);
    onednn_dense kernel(c.weight.data(), c.rows, c.inputs, c.bias.data(), p, c.input_range());
    for (Index n : {c.samples, Index{1}, c.samples}) {  // plain and rectified plans side by side
      CAPTURE(n);
      std::vector<float> rectified(static_cast<std::size_t>(c.rows * n), std::nanf(""));
      kernel.forward(c.x.data(), n, rectified.data(), true);
      std::vector<float> expected = c.run(kernel, n);
      const auto negatives = std::count_if(expected.begin(), expected.end(), [](float v) { return v < 0.0f; });
      CHECK(negatives > 0);  // the case has something to rectify
      for (float& v : expected) v = std::max(v, 0.0f);
      CHECK(rectified == expected);
    }
  }
}

TEST_CASE("bf16 rounds inputs and weights to 8 bits of significand and sums in fp32") {
  if (!runs_here(precision::bf16)) return;
  const layer_case c(false);
  onednn_dense kernel(c.weight.data(), c.rows, c.inputs, c.bias.data(), precision::bf16);
  const auto y = c.run(kernel, c.samples);
  // Each factor is off by at most 2^-8 relative (unit roundoff of an 8-bit significand), each
  // product by 2^-7 + 2^-16; the fp32 sum adds (inputs + 2) roundings of 2^-24.
  const double ratio = worst_ratio(c, y, c.samples, [&](Index r, Index j) {
    double size;
    c.product(r, j, &size);
    return (std::ldexp(1.0, -7) + std::ldexp(1.0, -16) + static_cast<double>(c.inputs + 2) * std::ldexp(1.0, -24)) * size +
           std::ldexp(1.0, -24) * std::abs(c.bias[static_cast<std::size_t>(r)]) + 1e-7;
  });
  CHECK(ratio <= 1.0);
  // And it does round: somewhere the error is beyond what fp32 allows.
  CHECK(worst_ratio(c, y, c.samples, [&](Index r, Index j) { return fp32_allowed(c, r, j); }) > 1.0);
}

TEST_CASE("int8 quantises weights per row and inputs by the calibrated range") {
  if (!runs_here(precision::int8)) return;
  for (bool nonnegative : {false, true}) {
    CAPTURE(nonnegative);
    const layer_case c(nonnegative);
    const float range = c.input_range();
    onednn_dense kernel(c.weight.data(), c.rows, c.inputs, c.bias.data(), precision::int8, range, nonnegative);
    const auto y = c.run(kernel, c.samples);
    // Rounding moves each input by at most half a step of range / 127 (range / 255 unsigned) and
    // each weight by half a step of max|W_r| / 127: the bound on the sum's error follows.
    const double x_step = range / (nonnegative ? 255.0 : 127.0);
    const double ratio = worst_ratio(c, y, c.samples, [&](Index r, Index j) {
      double w_max = 0.0, bound = 0.0;
      for (Index k = 0; k < c.inputs; ++k) w_max = std::max(w_max, std::abs(double(c.weight[static_cast<std::size_t>(k * c.rows + r)])));
      const double w_step = w_max / 127.0;
      for (Index k = 0; k < c.inputs; ++k)
        bound += std::abs(c.weight[static_cast<std::size_t>(k * c.rows + r)]) * x_step / 2 +
                 std::abs(c.x[static_cast<std::size_t>(j * c.inputs + k)]) * w_step / 2 + x_step * w_step / 4;
      return bound * 1.001 + 1e-5;
    });
    CHECK(ratio <= 1.0);
    CHECK(worst_ratio(c, y, c.samples, [&](Index r, Index j) { return fp32_allowed(c, r, j); }) > 1.0);
  }
}

TEST_CASE("int8 inputs beyond the calibrated range saturate") {
  if (!runs_here(precision::int8)) return;
  const layer_case c(false);
  onednn_dense narrow(c.weight.data(), c.rows, c.inputs, c.bias.data(), precision::int8, 0.25f);
  const auto y = c.run(narrow, c.samples);
  double clipped = 0.0;  // the product of inputs clipped to [-0.25, 0.25], in double
  for (Index k = 0; k < c.inputs; ++k)
    clipped += double(c.weight[static_cast<std::size_t>(k * c.rows)]) * std::clamp(c.x[static_cast<std::size_t>(k)], -0.25f, 0.25f);
  CHECK(std::abs(y[0] - (clipped + c.bias[0])) < 0.05);
  CHECK(std::abs(y[0] - c.product(0, 0)) > 0.05);

  SECTION("unsigned: negative inputs become 0") {
    onednn_dense positive(c.weight.data(), c.rows, c.inputs, c.bias.data(), precision::int8, c.input_range(), true);
    const auto z = c.run(positive, 1);
    double rectified = c.bias[0];
    for (Index k = 0; k < c.inputs; ++k)
      rectified += double(c.weight[static_cast<std::size_t>(k * c.rows)]) * std::max(c.x[static_cast<std::size_t>(k)], 0.0f);
    CHECK(std::abs(z[0] - rectified) < 0.05);
  }
}

TEST_CASE("Bad settings are refused") {
  const layer_case c(false);
  CHECK_THROWS_AS(onednn_dense(c.weight.data(), c.rows, c.inputs, nullptr, precision::int8), config_error);
  CHECK_THROWS_AS(onednn_dense(c.weight.data(), c.rows, c.inputs, nullptr, precision::int8, std::nanf("")), config_error);
  CHECK_THROWS_AS(onednn_dense(c.weight.data(), 0, c.inputs, nullptr, precision::fp32), shape_error);
  std::vector<float> broken = c.weight;
  broken[17] = std::nanf("");
  CHECK_THROWS_WITH(onednn_dense(broken.data(), c.rows, c.inputs, nullptr, precision::fp32), Catch::Contains("weight 17"));
  CHECK(parse_precision("bf16") == precision::bf16);
  CHECK_THROWS_WITH(parse_precision("fp16"), Catch::Contains("fp32, bf16 or int8"));
}

TEST_CASE("precision_unavailable answers for this machine") {
  CHECK(precision_unavailable(precision::fp32).empty());
  for (precision p : {precision::bf16, precision::int8}) {
    const std::string why = precision_unavailable(p);
    CHECK((why.empty() || why.find("slower than fp32") != std::string::npos));
  }
}

namespace {
/// Values that probe rounding: ties at the scale (k + 1/2), just either side of them, both ends
/// of the range and beyond, signed zeros, tiny and huge values; then random ones. 16-wide
/// kernels must agree with their scalar tails, so the count is not a multiple of 16.
std::vector<float> rounding_probes() {
  std::vector<float> v;
  for (int k = -300; k <= 300; ++k) {
    const float tie = 0.5f * static_cast<float>(k);
    v.insert(v.end(), {tie, std::nextafter(tie, -1e9f), std::nextafter(tie, 1e9f)});
  }
  v.insert(v.end(), {0.0f, -0.0f, 1e-30f, -1e-30f, 3e38f, -3e38f, 127.5f, -128.5f, 255.5f, 256.0f, -129.0f});
  const random_stream rng(11, purpose::user);
  for (std::uint64_t k = 0; v.size() % 16 != 5 || v.size() < 4000; ++k) v.push_back(static_cast<float>(200.0 * rng.normal(k)));
  return v;
}

/// `x` converted by a oneDNN reorder to `to` (with output scale `scale`): what onednn_dense did
/// before it converted inputs itself.
template <class Out>
std::vector<Out> onednn_reorder(const std::vector<float>& x, dnnl::memory::data_type to, float scale) {
  dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  const dnnl::memory::dims shape{static_cast<dnnl::memory::dim>(x.size())};
  std::vector<Out> out(x.size());
  dnnl::memory from({shape, dnnl::memory::data_type::f32, dnnl::memory::format_tag::a}, engine, const_cast<float*>(x.data()));
  dnnl::memory into({shape, to, dnnl::memory::format_tag::a}, engine, out.data());
  dnnl::primitive_attr attr;
  if (scale != 1.0f) attr.set_output_scales(0, {scale});
  dnnl::reorder(dnnl::reorder::primitive_desc(engine, from.get_desc(), engine, into.get_desc(), attr)).execute(stream, from, into);
  stream.wait();
  return out;
}
}  // namespace

TEST_CASE("Inputs are converted to int8, uint8 and bf16 exactly as oneDNN's reorders convert them") {
  const std::vector<float> x = rounding_probes();
  for (float scale : {1.0f, 2.0f, 0.37f, 127.0f / 3.2f}) {
    CAPTURE(scale);
    std::vector<std::int8_t> s8(x.size());
    detail::quantize(x.data(), x.size(), scale, s8.data());
    CHECK(s8 == onednn_reorder<std::int8_t>(x, dnnl::memory::data_type::s8, scale));
    std::vector<std::uint8_t> u8(x.size());
    detail::quantize(x.data(), x.size(), scale, u8.data());
    CHECK(u8 == onednn_reorder<std::uint8_t>(x, dnnl::memory::data_type::u8, scale));
  }
  // Saturation and ties to even, stated directly.
  const std::vector<float> edges{-1000.0f, -128.5f, -2.5f, -1.5f, 0.5f, 1.5f, 2.5f, 127.5f, 255.5f, 1000.0f};
  std::vector<std::int8_t> s8(edges.size());
  std::vector<std::uint8_t> u8(edges.size());
  detail::quantize(edges.data(), edges.size(), 1.0f, s8.data());
  detail::quantize(edges.data(), edges.size(), 1.0f, u8.data());
  CHECK(s8 == std::vector<std::int8_t>{-128, -128, -2, -2, 0, 2, 2, 127, 127, 127});
  CHECK(u8 == std::vector<std::uint8_t>{0, 0, 0, 0, 0, 2, 2, 128, 255, 255});

  std::vector<std::uint16_t> bf16(x.size());
  detail::round_to_bf16(x.data(), x.size(), bf16.data());
  CHECK(bf16 == onednn_reorder<std::uint16_t>(x, dnnl::memory::data_type::bf16, 1.0f));
  const float ties[] = {1.0f + 0x1p-8f, 1.0f + 0x3p-8f};  // halfway: to 1.0 (even) and up to 1 + 2^-6
  std::uint16_t rounded[2];
  detail::round_to_bf16(ties, 2, rounded);
  CHECK(rounded[0] == 0x3F80);
  CHECK(rounded[1] == 0x3F82);
}
