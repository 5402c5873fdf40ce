#pragma once
/// \file sparse_int8.hpp
/// The int8 arithmetic of SparseInputDense's evaluation passes (sparse_input_dense.hpp), asked
/// for through `dense_kernels::quantize_sparse` (as OnednnInference in int8 does):
///   weights  symmetric per output row: q(r, i) = round(W(r, i) / s_r), s_r = max_i |W(r, i)| / 127
///   inputs   per sample, unsigned: x_q = round(x m), m = 255 / max x, rounded down to an integer
///            when that is at least 1, so that the small integers of fingerprints (bits, counts up
///            to 255) are exact and only the weights are rounded
///   output   y_r = b_r + (s_r / m) sum_k x_q,k q(r, i_k), the sum in int32 (exact)
/// The scales depend on the weights and the sample alone, never on the batch: a molecule scores
/// the same in any batch, shard or run. A sample with a negative or non-finite input is
/// evaluated in fp32 instead. The sums run on AVX512_VNNI's vpdpbusd, four non-zeros at a time;
/// without it in the build (-march=native on a CPU that has it) the layer stays fp32.
/// The packed int8 weights take a quarter of the fp32 copy's memory (2 MiB for 2,048 x 1,024),
/// which is what makes them faster: summing a fingerprint's ~60 weight rows is bound by reading
/// them from L2.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#if defined(__AVX512VNNI__) && defined(__AVX512BW__)
#include <immintrin.h>
#define STRATA_SPARSE_INT8 1
#endif

#include "../core/config.hpp"

namespace strata {

/// Whether this build evaluates SparseInputDense in int8 when asked (AVX512_VNNI compiled in).
#if defined(STRATA_SPARSE_INT8)
inline constexpr bool sparse_int8_available = true;
#else
inline constexpr bool sparse_int8_available = false;
#endif

namespace detail {

/// A sample's input scale m (see the file comment) from its largest input; 1 for an all-zero one.
inline float sparse_input_multiplier(float largest) {
  if (!(largest > 0.0f)) return 1.0f;
  const float m = 255.0f / largest;
  return m >= 1.0f ? std::floor(m) : m;
}

/// x m rounded to nearest (ties to even) and kept within [0, 255] (x >= 0, x <= largest).
inline std::uint8_t sparse_input_quantized(float x, float m) {
  return static_cast<std::uint8_t>(std::min(255.0f, std::nearbyint(x * m)));
}

/// Weights of a `rows x inputs` layer in int8, tile by tile of 64 output rows as the fp32
/// packing (tile t: rows [64 t, 64 t + 64) of input 0, then of input 1, ...; zero past the last
/// row), each input's 64 bytes permuted so that the byte interleaving in int8_tile_sum delivers
/// the sums in row order: row 16 a + 4 b + c sits at byte 16 b + 4 a + c.
struct int8_sparse_weights {
  static constexpr Index tile = 64;
  std::vector<std::int8_t> packed;
  std::vector<float> scale;  // s_r per row

  static constexpr Index position(Index row) { return 16 * ((row % 16) / 4) + 4 * (row / 16) + row % 4; }

  /// From the column-major `rows x inputs` weights `w`.
  void pack(const float* w, Index rows, Index inputs) {
    const Index tiles = (rows + tile - 1) / tile;
    scale.assign(static_cast<std::size_t>(rows), 0.0f);
    for (Index i = 0; i < inputs; ++i)
      for (Index r = 0; r < rows; ++r) scale[static_cast<std::size_t>(r)] = std::max(scale[static_cast<std::size_t>(r)], std::abs(w[i * rows + r]));
    for (float& s : scale) s = s > 0.0f ? s / 127.0f : 1.0f;
    packed.assign(static_cast<std::size_t>(tiles * inputs * tile), 0);
#if defined(_OPENMP)
#pragma omp parallel for schedule(static) if (inputs * rows >= (1 << 16))
#endif
    for (Index t = 0; t < tiles; ++t)
      for (Index i = 0; i < inputs; ++i)
        for (Index r = t * tile; r < std::min(rows, (t + 1) * tile); ++r) {
          const float q = std::nearbyint(w[i * rows + r] / scale[static_cast<std::size_t>(r)]);
          packed[static_cast<std::size_t>((t * inputs + i) * tile + position(r - t * tile))] =
              static_cast<std::int8_t>(std::max(-127.0f, std::min(127.0f, q)));
        }
  }
};

#if defined(STRATA_SPARSE_INT8)
/// y[0, rows) = bias (or 0) + (scale[r] / m) sum_k x[k] q(r, input[k]) for one tile of packed
/// weights (`weight`: the tile's start; input i's 64 bytes at weight + 64 i): four non-zeros at
/// a time, their bytes interleaved into groups of four per row and summed by vpdpbusd in int32;
/// a last partial group is padded with zero inputs.
inline void int8_tile_sum(const float* bias, Index rows, const std::int8_t* weight, const Index* input, const std::uint8_t* x,
                          Index count, const float* scale, float m, float* y) {
  __m512i acc[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512()};
  const auto add = [&](const std::int8_t* w0, const std::int8_t* w1, const std::int8_t* w2, const std::int8_t* w3, std::uint32_t xs) {
    const __m512i a0 = _mm512_loadu_si512(w0), a1 = _mm512_loadu_si512(w1), a2 = _mm512_loadu_si512(w2), a3 = _mm512_loadu_si512(w3);
    const __m512i t0 = _mm512_unpacklo_epi8(a0, a1), t1 = _mm512_unpackhi_epi8(a0, a1);
    const __m512i t2 = _mm512_unpacklo_epi8(a2, a3), t3 = _mm512_unpackhi_epi8(a2, a3);
    const __m512i v = _mm512_set1_epi32(static_cast<int>(xs));
    acc[0] = _mm512_dpbusd_epi32(acc[0], v, _mm512_unpacklo_epi16(t0, t2));
    acc[1] = _mm512_dpbusd_epi32(acc[1], v, _mm512_unpackhi_epi16(t0, t2));
    acc[2] = _mm512_dpbusd_epi32(acc[2], v, _mm512_unpacklo_epi16(t1, t3));
    acc[3] = _mm512_dpbusd_epi32(acc[3], v, _mm512_unpackhi_epi16(t1, t3));
  };
  const auto at = [&](Index k) { return weight + input[k] * int8_sparse_weights::tile; };
  Index k = 0;
  for (; k + 4 <= count; k += 4) {
    std::uint32_t xs;
    std::memcpy(&xs, x + k, sizeof xs);
    add(at(k), at(k + 1), at(k + 2), at(k + 3), xs);
  }
  if (k < count) {
    std::uint32_t xs = 0;
    const std::int8_t* w[4];
    for (Index j = 0; j < 4; ++j) {
      const Index from = k + j < count ? k + j : k;  // padding: the group's first input, times 0
      w[j] = at(from);
      if (k + j < count) xs |= static_cast<std::uint32_t>(x[k + j]) << (8 * j);
    }
    add(w[0], w[1], w[2], w[3], xs);
  }
  const __m512 inverse = _mm512_set1_ps(1.0f / m);
  const auto sum = [&](int p, __m512 b, __m512 s) { return _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[p]), _mm512_mul_ps(s, inverse), b); };
  if (rows == int8_sparse_weights::tile) {
    for (int p = 0; p < 4; ++p)
      _mm512_storeu_ps(y + 16 * p, sum(p, bias != nullptr ? _mm512_loadu_ps(bias + 16 * p) : _mm512_setzero_ps(), _mm512_loadu_ps(scale + 16 * p)));
    return;
  }
  alignas(64) float b[int8_sparse_weights::tile] = {}, s[int8_sparse_weights::tile] = {}, out[int8_sparse_weights::tile];
  if (bias != nullptr) std::copy(bias, bias + rows, b);
  std::copy(scale, scale + rows, s);
  for (int p = 0; p < 4; ++p) _mm512_store_ps(out + 16 * p, sum(p, _mm512_load_ps(b + 16 * p), _mm512_load_ps(s + 16 * p)));
  std::copy(out, out + rows, y);
}
#endif

}  // namespace detail
}  // namespace strata
