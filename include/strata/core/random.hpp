#pragma once
/// \file random.hpp
/// Counter-based random numbers (Philox-4x32-10, Salmon et al., SC'11).
///
/// Every random draw in Strata is a pure function of (seed, purpose, stream, index): the same
/// seed gives the same initial weights, dropout masks and shuffles whatever the thread count,
/// rank count or backend, and any element can be drawn without drawing the ones before it.

#include <cmath>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <utility>
#include <vector>

#include "config.hpp"

namespace strata {

/// What a random stream is used for; part of the key so that streams never collide.
enum class purpose : std::uint32_t {
  initialization = 1,
  dropout = 2,
  shuffle = 3,
  data = 4,
  tournament = 5,
  split = 6,
  user = 100,
};

/// One 128-bit Philox output block.
struct philox_block {
  std::uint32_t word[4];
};

/// Two 64-bit random integers (one Philox block).
struct integer_pair {
  std::uint64_t first, second;
};

/// Philox-4x32 with 10 rounds: a bijection of a 128-bit counter under a 64-bit key.
STRATA_HD inline philox_block philox4x32(std::uint32_t c0, std::uint32_t c1, std::uint32_t c2,
                                         std::uint32_t c3, std::uint32_t k0, std::uint32_t k1) {
#if defined(__CUDA_ARCH__)
  constexpr std::uint32_t m0 = 0xD2511F53u, m1 = 0xCD9E8D57u;
  constexpr std::uint32_t w0 = 0x9E3779B9u, w1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    const std::uint64_t p0 = static_cast<std::uint64_t>(m0) * c0;
    const std::uint64_t p1 = static_cast<std::uint64_t>(m1) * c2;
    const std::uint32_t hi0 = static_cast<std::uint32_t>(p0 >> 32), lo0 = static_cast<std::uint32_t>(p0);
    const std::uint32_t hi1 = static_cast<std::uint32_t>(p1 >> 32), lo1 = static_cast<std::uint32_t>(p1);
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
    k0 += w0;
    k1 += w1;
  }
  return philox_block{{c0, c1, c2, c3}};
#else
  // The same rounds with every 32-bit word held in the low half of a 64-bit value: each
  // 32x32 -> 64-bit product is then a multiply of two masked 64-bit values, which a loop over
  // blocks vectorises as one vpmuludq per lane group (the 32-bit form does not vectorise).
  constexpr std::uint64_t low = 0xFFFFFFFFull;
  std::uint64_t x0 = c0, x1 = c1, x2 = c2, x3 = c3, key0 = k0, key1 = k1;
  for (int round = 0; round < 10; ++round) {
    const std::uint64_t p0 = 0xD2511F53ull * x0;
    const std::uint64_t p1 = 0xCD9E8D57ull * x2;
    x0 = (p1 >> 32) ^ x1 ^ key0;
    x1 = p1 & low;
    x2 = (p0 >> 32) ^ x3 ^ key1;
    x3 = p0 & low;
    key0 = (key0 + 0x9E3779B9ull) & low;
    key1 = (key1 + 0xBB67AE85ull) & low;
  }
  return philox_block{{static_cast<std::uint32_t>(x0), static_cast<std::uint32_t>(x1),
                       static_cast<std::uint32_t>(x2), static_cast<std::uint32_t>(x3)}};
#endif
}

/// SplitMix64 finaliser: spreads a 64-bit value over all bits (used to derive keys).
STRATA_HD constexpr std::uint64_t mix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

namespace detail {
/// A hash of a double's bits (salted): equal values on every rank give equal hashes.
inline std::uint64_t bits_signature(double value, std::uint64_t salt) {
  std::uint64_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  return mix64(bits + salt);
}
}  // namespace detail

/// A stream of random numbers: a key (seed, purpose) and a stream id (e.g. a layer and a step);
/// element i of the stream is philox(counter = (i, stream), key). Trivially copyable, so it can
/// be captured by value in device lambdas.
class random_stream {
 public:
  STRATA_HD constexpr random_stream() : k0_(0), k1_(0), stream_(0) {}
  STRATA_HD random_stream(std::uint64_t seed, purpose what, std::uint64_t stream = 0)
      : k0_(static_cast<std::uint32_t>(mix64(seed))),
        k1_(static_cast<std::uint32_t>(mix64(seed ^ (static_cast<std::uint64_t>(what) << 40)) >> 32)),
        stream_(stream) {}

  /// The same key with another stream id (for sub-streams: step, sample block, ...).
  STRATA_HD random_stream substream(std::uint64_t id) const {
    random_stream s = *this;
    s.stream_ = mix64(stream_ ^ mix64(id + 0x632BE59BD9B4E019ull));
    return s;
  }

  /// The 128 random bits at position `index`.
  STRATA_HD philox_block bits(std::uint64_t index) const {
    return philox4x32(static_cast<std::uint32_t>(index), static_cast<std::uint32_t>(index >> 32),
                      static_cast<std::uint32_t>(stream_), static_cast<std::uint32_t>(stream_ >> 32),
                      k0_, k1_);
  }

  /// A 64-bit random integer at position `index`.
  STRATA_HD std::uint64_t integer(std::uint64_t index) const {
    const philox_block b = bits(index);
    return (static_cast<std::uint64_t>(b.word[0]) << 32) | b.word[1];
  }

  /// The two 64-bit random integers of the block at position `index`: the first is
  /// `integer(index)`, the second comes from the block's other two words. For element pairs that
  /// need one Philox call between them.
  STRATA_HD integer_pair integers(std::uint64_t index) const {
    const philox_block b = bits(index);
    return integer_pair{(static_cast<std::uint64_t>(b.word[0]) << 32) | b.word[1],
                        (static_cast<std::uint64_t>(b.word[2]) << 32) | b.word[3]};
  }

  /// Uniform in [0, 1) with 53 random bits, at position `index`.
  STRATA_HD double uniform(std::uint64_t index) const {
    return static_cast<double>(integer(index) >> 11) * (1.0 / 9007199254740992.0);
  }

  /// Standard normal at position `index` (Box-Muller on two 32-bit words; one value per index).
  STRATA_HD double normal(std::uint64_t index) const {
    const philox_block b = bits(index);
    // u1 in (0, 1] so the logarithm is finite; u2 in [0, 1).
    const double u1 = (static_cast<double>(b.word[0]) + 1.0) * (1.0 / 4294967296.0);
    const double u2 = static_cast<double>(b.word[1]) * (1.0 / 4294967296.0);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586476925 * u2);
  }

  /// An integer uniform in [0, n), at position `index` (n > 0).
  STRATA_HD std::uint64_t below(std::uint64_t n, std::uint64_t index) const {
    // High 64 bits of the 128-bit product x * n (Lemire's multiply-shift), written with 32-bit
    // halves so that it is portable C++ and valid device code.
    const std::uint64_t x = integer(index);
    const std::uint64_t x_lo = x & 0xFFFFFFFFull, x_hi = x >> 32;
    const std::uint64_t n_lo = n & 0xFFFFFFFFull, n_hi = n >> 32;
    const std::uint64_t lo_lo = x_lo * n_lo, hi_lo = x_hi * n_lo, lo_hi = x_lo * n_hi;
    const std::uint64_t middle = (lo_lo >> 32) + (hi_lo & 0xFFFFFFFFull) + lo_hi;
    return x_hi * n_hi + (hi_lo >> 32) + (middle >> 32);
  }

 private:
  std::uint32_t k0_, k1_;
  std::uint64_t stream_;
};

/// A permutation of 0..n-1 (Fisher-Yates) that depends only on the stream: epoch orders, splits
/// and hold-outs all come from here, each with its own purpose.
inline std::vector<Index> permutation(Index n, const random_stream& rng) {
  std::vector<Index> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), Index{0});
  for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[static_cast<std::size_t>(rng.below(i, i))]);
  return order;
}

}  // namespace strata
