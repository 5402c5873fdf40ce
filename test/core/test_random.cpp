// The counter-based generator: Philox known answers, statistics, and the independence of
// streams that every reproducibility guarantee rests on.
#include <catch2/catch.hpp>

#include <strata/core/random.hpp>

#include <cmath>
#include <set>
#include <vector>

using namespace strata;

TEST_CASE("Philox-4x32-10 reproduces the published known-answer vectors") {
  // Known-answer vectors of Salmon et al. (SC'11), Random123 distribution.
  const philox_block zero = philox4x32(0, 0, 0, 0, 0, 0);
  CHECK(zero.word[0] == 0x6627e8d5u);
  CHECK(zero.word[1] == 0xe169c58du);
  CHECK(zero.word[2] == 0xbc57ac4cu);
  CHECK(zero.word[3] == 0x9b00dbd8u);

  const philox_block ones = philox4x32(0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu);
  CHECK(ones.word[0] == 0x408f276du);
  CHECK(ones.word[1] == 0x41c83b0eu);
  CHECK(ones.word[2] == 0xa20bc7c6u);
  CHECK(ones.word[3] == 0x6d5451fdu);

  const philox_block pi = philox4x32(0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u, 0xa4093822u, 0x299f31d0u);
  CHECK(pi.word[0] == 0xd16cfe09u);
  CHECK(pi.word[1] == 0x94fdccebu);
  CHECK(pi.word[2] == 0x5001e420u);
  CHECK(pi.word[3] == 0x24126ea1u);
}

TEST_CASE("A random stream is a pure function of seed, purpose, stream and index") {
  const random_stream a(42, purpose::dropout, 7), b(42, purpose::dropout, 7);
  SECTION("the same key gives the same values, in any order of access") {
    CHECK(a.integer(1000) == b.integer(1000));
    CHECK(a.uniform(3) == b.uniform(3));
    CHECK(a.normal(99) == b.normal(99));
  }
  SECTION("integers gives both halves of a block; the first is integer") {
    const integer_pair pair = a.integers(77);
    CHECK(pair.first == a.integer(77));
    const philox_block block = a.bits(77);
    CHECK(pair.second == ((static_cast<std::uint64_t>(block.word[2]) << 32) | block.word[3]));
    CHECK(pair.second != pair.first);
  }
  SECTION("seed, purpose, stream and substream each change the values") {
    CHECK(a.integer(0) != random_stream(43, purpose::dropout, 7).integer(0));
    CHECK(a.integer(0) != random_stream(42, purpose::initialization, 7).integer(0));
    CHECK(a.integer(0) != random_stream(42, purpose::dropout, 8).integer(0));
    CHECK(a.integer(0) != a.substream(1).integer(0));
    CHECK(a.substream(1).integer(0) != a.substream(2).integer(0));
    CHECK(a.substream(5).integer(11) == b.substream(5).integer(11));
  }
}

TEST_CASE("Uniform, normal and bounded draws have the right distribution") {
  const random_stream rng(2024, purpose::user);
  const int n = 200000;
  double sum_u = 0, sum_u2 = 0, sum_z = 0, sum_z2 = 0, sum_z4 = 0;
  std::vector<int> bins(10, 0);
  for (int i = 0; i < n; ++i) {
    const double u = rng.uniform(static_cast<std::uint64_t>(i));
    REQUIRE(u >= 0.0);
    REQUIRE(u < 1.0);
    sum_u += u;
    sum_u2 += u * u;
    const double z = rng.normal(static_cast<std::uint64_t>(i));
    REQUIRE(std::isfinite(z));
    sum_z += z;
    sum_z2 += z * z;
    sum_z4 += z * z * z * z;
    const std::uint64_t k = rng.below(10, static_cast<std::uint64_t>(i));
    REQUIRE(k < 10);
    ++bins[k];
  }
  // Tolerances are about 5 standard errors of each estimate.
  CHECK(sum_u / n == Approx(0.5).margin(0.004));
  CHECK(sum_u2 / n - (sum_u / n) * (sum_u / n) == Approx(1.0 / 12).margin(0.002));
  CHECK(sum_z / n == Approx(0.0).margin(0.012));
  CHECK(sum_z2 / n == Approx(1.0).margin(0.016));
  CHECK(sum_z4 / n == Approx(3.0).margin(0.12));  // kurtosis of a normal
  for (int count : bins) CHECK(count == Approx(n / 10).margin(5 * std::sqrt(n * 0.09)));
}

TEST_CASE("64-bit outputs of consecutive indices do not repeat") {
  const random_stream rng(1, purpose::shuffle);
  std::set<std::uint64_t> seen;
  for (std::uint64_t i = 0; i < 100000; ++i) seen.insert(rng.integer(i));
  CHECK(seen.size() == 100000);
}
