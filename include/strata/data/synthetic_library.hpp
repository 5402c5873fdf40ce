#pragma once
/// \file synthetic_library.hpp
/// A synthetic screening library for docking surrogates (docs/design.md §2): molecule i's features
/// and true docking score are a pure function of (seed, i), so a library of 10⁸-10⁹ molecules
/// streams without being stored and any molecule can be drawn alone.
///
/// A molecule is a bag of 6-14 substructures ("fragments") from a vocabulary of 1,024, common
/// ones far more often than rare ones (fragment = floor(F u²)). Its features follow from them
/// as in real chemistry:
///   fingerprint  every fragment sets a fixed handful of hashed bits of 2,048 (about 60 bits, 3%,
///                as a radius-2 Morgan fingerprint of a drug-like molecule), binary or counted;
///   descriptors  1,613 values tanh(P c), c the fragment counts and P a fixed random matrix
///                (the width of the group's descriptor set).
/// The score is docking-like: binding strength is a saturating sum of fragment contributions
/// drawn from a log-normal (a few fragments bind strongly: a heavy right tail), plus a little
/// noise no model can learn; score = -strength (more negative is better) and the regression
/// label is reg = max(-score, 0), as in the paper.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#if defined(_OPENMP)
#include <omp.h>
#endif
#if defined(__AVX512F__) && defined(__AVX512VL__)
#include <immintrin.h>
#endif

#include "../core/error.hpp"
#include "../core/random.hpp"
#include "../core/tensor.hpp"

namespace strata {

namespace detail {
/// `out[i] = static_cast<float>(std::tanh(static_cast<double>(in[i])))` to the bit, for `n` values
/// (`out` may be `in`), in a loop that vectorises: what bounds a descriptor screen is generating
/// the library, 1,613 of these per molecule. Each value's tanh is computed in double to a
/// relative 4e-13 (tanh(a) = expm1(2a) / (expm1(2a) + 2); expm1(y) = 2^(k/16) e^r - 1 with
/// y = k ln2 / 16 + r, 2^(j/16) from a table of 16, e^r - 1 by a Taylor series of 6 terms).
/// Rounding that double to float gives std::tanh's float wherever no float rounding boundary lies
/// within a relative 1e-11 of it: std::tanh's double (within an ulp of the truth) then rounds the
/// same way. Float keeps the top 23 of double's 52 significand bits, so the boundary is where the
/// 29 bits below are 2^28; the margin is 2^17 units of the last place on either side (1.5e-11 to
/// 2.9e-11 relative). The rest, about 1 value in 2,000 and NaNs, go to std::tanh. Returns how
/// many did. Never inlined: inside a large caller GCC has spilled its registers on every step.
[[gnu::noinline]] inline Index tanh_to_float(const float* in, float* out, Index n) {
  constexpr double sixteen_by_ln2 = 23.083120654223414;
  constexpr double ln2_hi = 6.93147180369123816490e-01 / 16, ln2_lo = 1.90821492927058770002e-10 / 16;  // ln2 / 16
  constexpr double shifter = 6755399441055744.0;  // 1.5 * 2^52: adding it rounds to an integer kept in the low bits
  constexpr std::uint64_t low_bits = (std::uint64_t{1} << 29) - 1, boundary = std::uint64_t{1} << 28,
                          margin = std::uint64_t{1} << 17;
  constexpr std::uint32_t ten = 0x41200000u;      // 10.0f: tanh(10) rounds to 1.0f
  constexpr std::uint32_t infinity = 0x7F800000u, sign = 0x80000000u, marker = 0x7FC00000u;  // marker: a quiet NaN
  // 2^(j/16), j = 0..15, rounded to the nearest double.
  alignas(64) static constexpr double powers[16] = {
      0x1.0000000000000p+0, 0x1.0b5586cf9890fp+0, 0x1.172b83c7d517bp+0, 0x1.2387a6e756238p+0,
      0x1.306fe0a31b715p+0, 0x1.3dea64c123422p+0, 0x1.4bfdad5362a27p+0, 0x1.5ab07dd485429p+0,
      0x1.6a09e667f3bcdp+0, 0x1.7a11473eb0187p+0, 0x1.8ace5422aa0dbp+0, 0x1.9c49182a3f090p+0,
      0x1.ae89f995ad3adp+0, 0x1.c199bdd85529cp+0, 0x1.d5818dcfba487p+0, 0x1.ea4afa2a490dap+0};
  constexpr Index block = 256;
  Index exact = 0;
  // Block by block through a copy of the inputs, so that `out` may be `in` and the values that
  // go to std::tanh still have their input.
  for (Index start = 0; start < n; start += block) {
    const Index m = std::min(block, n - start);
    float saved[block];
    std::memcpy(saved, in + start, sizeof(float) * static_cast<std::size_t>(m));
    float* const o = out + start;
    std::uint32_t marked = 0;
    Index i = 0;
#if defined(__AVX512F__) && defined(__AVX512VL__)
    // Eight at a time in 512-bit registers (compilers vectorise the loop below in 256-bit ones on
    // AVX-512 CPUs by default: half the arithmetic per instruction), the same steps but two: the
    // table is two registers indexed by vpermt2pd, and 1 / (expm1 + 2) comes from vrcp14pd's
    // 14-bit reciprocal and one cubic Newton step, y0 (1 + e + e²) with e = 1 - d y0, relatively
    // within e³ <= 2^-42 (2.3e-13) of it, which saves a division (16 cycles for 8 doubles).
    {
      const __m512d one = _mm512_set1_pd(1.0), two = _mm512_set1_pd(2.0), shift = _mm512_set1_pd(shifter);
      const __m512d table_lo = _mm512_load_pd(powers), table_hi = _mm512_load_pd(powers + 8);
      const __m256i magnitude_mask = _mm256_set1_epi32(static_cast<int>(~sign)), limit = _mm256_set1_epi32(static_cast<int>(ten)),
                    infinite = _mm256_set1_epi32(static_cast<int>(infinity)), sign_mask = _mm256_set1_epi32(static_cast<int>(sign)),
                    nan_marker = _mm256_set1_epi32(static_cast<int>(marker));
      const __m512i low_mask = _mm512_set1_epi64(static_cast<long long>(low_bits)),
                    centre = _mm512_set1_epi64(static_cast<long long>(margin - boundary)),
                    width = _mm512_set1_epi64(static_cast<long long>(2 * margin));
      __mmask8 all = 0xFF;
      for (; i + 8 <= m; i += 8) {
        const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(saved + i));
        const __m256i magnitude = _mm256_and_si256(x, magnitude_mask);
        const __m512d a = _mm512_cvtps_pd(_mm256_castsi256_ps(_mm256_min_epu32(magnitude, limit)));
        const __m512d y = _mm512_add_pd(a, a);
        const __m512d shifted = _mm512_fmadd_pd(y, _mm512_set1_pd(sixteen_by_ln2), shift);
        const __m512d k = _mm512_sub_pd(shifted, shift);
        const __m512d r = _mm512_fnmadd_pd(k, _mm512_set1_pd(ln2_lo), _mm512_fnmadd_pd(k, _mm512_set1_pd(ln2_hi), y));
        __m512d q = _mm512_set1_pd(1.0 / 720);
        for (const double c : {1.0 / 120, 1.0 / 24, 1.0 / 6, 1.0 / 2, 1.0}) q = _mm512_fmadd_pd(q, r, _mm512_set1_pd(c));
        const __m512d p = _mm512_mul_pd(q, r);
        // 2^(k / 16): the table's entry k mod 16 (vpermt2pd reads the low 4 bits of each index)
        // with k / 16 added to its exponent (the bits of `shifted` above k shift out).
        const __m512i k_bits = _mm512_castpd_si512(shifted);
        const __m512d power = _mm512_permutex2var_pd(table_lo, k_bits, table_hi);
        const __m512d scale = _mm512_castsi512_pd(
            _mm512_add_epi64(_mm512_castpd_si512(power), _mm512_slli_epi64(_mm512_srli_epi64(k_bits, 4), 52)));
        const __m512d em1 = _mm512_fmadd_pd(scale, p, _mm512_sub_pd(scale, one));
        const __m512d d = _mm512_add_pd(em1, two), y0 = _mm512_rcp14_pd(d);
        const __m512d e = _mm512_fnmadd_pd(d, y0, one);
        const __m512d t = _mm512_mul_pd(em1, _mm512_fmadd_pd(y0, _mm512_fmadd_pd(e, e, e), y0));
        // Known unless the 29 bits float drops are within the margin of 2^28 (unsigned: the
        // distance shifted so that the band around the boundary is [0, 2 margin]).
        const __m512i distance = _mm512_add_epi64(_mm512_and_si512(_mm512_castpd_si512(t), low_mask), centre);
        const __mmask8 known = _mm512_cmpgt_epu64_mask(distance, width) & _mm256_cmple_epu32_mask(magnitude, infinite);
        const __m256i rounded = _mm256_castps_si256(_mm512_cvtpd_ps(t));
        const __m256i result = _mm256_mask_blend_epi32(known, nan_marker, _mm256_or_si256(rounded, _mm256_and_si256(x, sign_mask)));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + i), result);
        all &= known;
      }
      marked = all != 0xFF;
    }
#endif
    // The selections below compare bits, not floats: a floating-point comparison may raise an
    // exception, which keeps GCC from vectorising the loop under the default -ftrapping-math.
    for (; i < m; ++i) {
      std::uint32_t x;
      std::memcpy(&x, saved + i, sizeof x);
      const std::uint32_t magnitude = x & ~sign;
      const std::uint32_t clamped = magnitude < ten ? magnitude : ten;  // NaN clamps too, and is marked below
      float a;
      std::memcpy(&a, &clamped, sizeof a);
      const double y = 2.0 * static_cast<double>(a);
      const double shifted = y * sixteen_by_ln2 + shifter;
      const double k = shifted - shifter;                   // y = k ln2 / 16 + r, |r| <= ln2 / 32
      const double r = (y - k * ln2_hi) - k * ln2_lo;
      // e^r - 1 by its Taylor series to r^6 / 6!: the rest is below 4.4e-16 (|r| <= 0.0217), a
      // relative 2e-14 of it. Where k > 0, 2^(k/16) e^r - 1 >= 0.021 magnifies the table's and
      // the sum's rounding (1.1e-16 relative) at most 50 times; where k = 0, expm1 is p itself.
      const double p = r * (1.0 + r * (1.0 / 2 + r * (1.0 / 6 + r * (1.0 / 24 + r * (1.0 / 120 + r * (1.0 / 720))))));
      std::uint64_t k_bits;
      std::memcpy(&k_bits, &shifted, sizeof k_bits);
      const double power = powers[k_bits & 15];
      std::uint64_t scale_bits;
      std::memcpy(&scale_bits, &power, sizeof scale_bits);
      scale_bits += ((k_bits & 0xFFFFFFFFull) >> 4) << 52;   // 2^(k/16), k / 16 in [0, 28]
      double scale;
      std::memcpy(&scale, &scale_bits, sizeof scale);
      const double em1 = scale * p + (scale - 1.0);          // expm1(y), exact in p when k = 0
      const double t = em1 / (em1 + 2.0);                    // tanh(|x|) >= 0
      std::uint64_t t_bits;
      std::memcpy(&t_bits, &t, sizeof t_bits);
      const bool known = ((t_bits & low_bits) + (margin - boundary)) > 2 * margin && magnitude <= infinity;
      const float rounded = static_cast<float>(t);
      std::uint32_t rounded_bits;
      std::memcpy(&rounded_bits, &rounded, sizeof rounded_bits);
      const std::uint32_t result = known ? rounded_bits | (x & sign) : marker;
      std::memcpy(o + i, &result, sizeof result);
      marked |= static_cast<std::uint32_t>(result == marker);
    }
    if (marked == 0) continue;  // the usual case: no value of the block needs std::tanh
    for (Index i = 0; i < m; ++i)
      if (std::isnan(o[i])) {
        o[i] = static_cast<float>(std::tanh(static_cast<double>(saved[i])));
        ++exact;
      }
  }
  return exact;
}

}  // namespace detail

/// Which features of a molecule a model reads.
enum class molecule_features { fingerprint, fingerprint_counts, descriptors };

inline molecule_features parse_molecule_features(const std::string& name) {
  if (name == "fingerprint") return molecule_features::fingerprint;
  if (name == "counts" || name == "fingerprint-counts") return molecule_features::fingerprint_counts;
  if (name == "descriptors") return molecule_features::descriptors;
  throw config_error("unknown molecule features '" + name + "' (fingerprint, counts, descriptors)");
}

inline const char* to_string(molecule_features f) {
  switch (f) {
    case molecule_features::fingerprint: return "fingerprint";
    case molecule_features::fingerprint_counts: return "counts";
    case molecule_features::descriptors: return "descriptors";
  }
  return "?";
}

/// Shape and seed of a synthetic library.
struct synthetic_library_options {
  std::uint64_t seed = 1;
  Index fingerprint_bits = 2048;
  Index descriptor_width = 1613;
  Index vocabulary = 1024;          ///< distinct fragments
  Index bits_per_fragment = 6;      ///< fingerprint bits one fragment sets
  Index min_fragments = 6, max_fragments = 14;  ///< fragments per molecule (uniform)
  double noise = 0.15;              ///< standard deviation of the unlearnable part of the score
};

class SyntheticLibrary {
 public:
  static constexpr Index max_fragments_limit = 64;

  explicit SyntheticLibrary(synthetic_library_options options = {}) : o_(options) {
    if (o_.fingerprint_bits < 1 || o_.descriptor_width < 1 || o_.vocabulary < 1 || o_.bits_per_fragment < 1 ||
        o_.min_fragments < 1 || o_.max_fragments < o_.min_fragments || o_.max_fragments > max_fragments_limit || o_.noise < 0)
      throw config_error("SyntheticLibrary: widths, vocabulary and fragment counts must be positive, min <= max <= 64, noise >= 0");
    const random_stream table(o_.seed, purpose::data, 0x11B);
    bits_.resize(static_cast<std::size_t>(o_.vocabulary * o_.bits_per_fragment));
    for (std::size_t k = 0; k < bits_.size(); ++k) bits_[k] = static_cast<Index>(table.below(static_cast<std::uint64_t>(o_.fingerprint_bits), k));
    const random_stream affinity(o_.seed, purpose::data, 0x11C);
    contribution_.resize(static_cast<std::size_t>(o_.vocabulary));
    for (std::size_t f = 0; f < contribution_.size(); ++f) contribution_[f] = 0.55 * std::exp(0.8 * affinity.normal(f)) - 0.15;
    // P(r, f) is normal number f * descriptor_width + r of its stream; stored by chunks (below).
    const random_stream projection(o_.seed, purpose::data, 0x11D);
    const Index chunks = (o_.descriptor_width + chunk_rows - 1) / chunk_rows;
    projection_.setZero(chunk_rows, chunks * o_.vocabulary);
    for (Index f = 0; f < o_.vocabulary; ++f)
      for (Index r = 0; r < o_.descriptor_width; ++r)
        projection_(r % chunk_rows, r / chunk_rows * o_.vocabulary + f) =
            static_cast<float>(0.35 * projection.normal(static_cast<std::uint64_t>(f * o_.descriptor_width + r)));
  }

  const synthetic_library_options& options() const { return o_; }
  Index width(molecule_features f) const {
    return f == molecule_features::descriptors ? o_.descriptor_width : o_.fingerprint_bits;
  }

  /// The fragments of molecule `id` (with repeats); returns how many were written to `out`.
  Index fragments(std::uint64_t id, Index* out) const {
    const random_stream rng(o_.seed, purpose::data, 0x200000000ull + id);
    const Index count = o_.min_fragments + static_cast<Index>(rng.below(static_cast<std::uint64_t>(o_.max_fragments - o_.min_fragments + 1), 0));
    for (Index k = 0; k < count; ++k) {
      const double u = rng.uniform(static_cast<std::uint64_t>(k) + 1);
      out[k] = std::min<Index>(o_.vocabulary - 1, static_cast<Index>(static_cast<double>(o_.vocabulary) * u * u));
    }
    return count;
  }

  /// Writes molecule `id`'s features into `out` (`width(f)` values).
  template <class T>
  void features(std::uint64_t id, molecule_features f, T* out) const { draw(&id, 1, f, out, width(f)); }

  /// Molecules `ids[0 .. count)` at once: molecule j's features from `out + j * stride` (as
  /// `features` gives them) and, unless `labels` is null, its label in `labels[j]`. Each
  /// molecule's fragments are drawn once for both, and descriptors are made for up to 512
  /// molecules at once (see `descriptors`).
  template <class T>
  void draw(const std::uint64_t* ids, Index count, molecule_features f, T* out, Index stride, T* labels = nullptr) const {
    constexpr Index group = 512;  // molecules whose fragments are drawn at once
    const Index per_molecule = o_.max_fragments;
    std::vector<Index> frag(static_cast<std::size_t>(std::min(group, count) * per_molecule));
    Index counts[group];
    for (Index g = 0; g < count; g += group) {
      const Index m = std::min(group, count - g);
      for (Index j = 0; j < m; ++j) {
        Index* const fj = frag.data() + j * per_molecule;
        counts[j] = fragments(ids[g + j], fj);
        if (labels != nullptr) labels[g + j] = static_cast<T>(std::max(-score_of(ids[g + j], fj, counts[j]), 0.0));
      }
      T* const first = out + g * stride;
      if (f == molecule_features::descriptors)
        descriptors(frag.data(), per_molecule, counts, m, first, stride);
      else
        for (Index j = 0; j < m; ++j) fingerprint(frag.data() + j * per_molecule, counts[j], f, first + j * stride);
    }
  }

  /// The true docking score of molecule `id` (negative; lower binds better).
  double score(std::uint64_t id) const {
    Index frag[max_fragments_limit];
    const Index count = fragments(id, frag);
    return score_of(id, frag, count);
  }

  /// The regression label of the paper: reg = max(-score, 0) (higher is better).
  double label(std::uint64_t id) const { return std::max(-score(id), 0.0); }

 private:
  double score_of(std::uint64_t id, const Index* frag, Index count) const {
    double strength = 0.0;
    for (Index k = 0; k < count; ++k) strength += contribution_[static_cast<std::size_t>(frag[k])];
    strength = 14.0 * std::tanh(strength / 14.0);  // binding saturates
    const random_stream rng(o_.seed, purpose::data, 0x300000000ull + id);
    return -(strength + o_.noise * rng.normal(0));
  }

  /// `count` molecules' descriptors from their fragment lists (molecule j's at `frag + j *
  /// per_molecule`): tanh of the sum of the fragments' columns, added in list order.
  /// Chunk by chunk of `chunk_rows` rows, every molecule in turn: a chunk of all 1,024 columns is
  /// 512 KiB, stored contiguously, and stays in L2 while the molecules read it, where a molecule at
  /// a time read its 6-14 columns of 6.3 KiB from L3 (the whole projection is 6.6 MB); 1.2x the
  /// molecules per second on one core. Each chunk's tanh is taken while the sum is in L1.
  template <class T>
  void descriptors(const Index* frag, Index per_molecule, const Index* counts, Index count, T* out, Index stride) const {
    const Index width = o_.descriptor_width, vocabulary = o_.vocabulary;
    for (Index r0 = 0, c = 0; r0 < width; r0 += chunk_rows, ++c) {
      const Index n = std::min(chunk_rows, width - r0);
      const float* const block = projection_.data() + c * vocabulary * chunk_rows;
      for (Index j = 0; j < count; ++j) {
        const Index* const fj = frag + j * per_molecule;
        T* const values = out + j * stride + r0;
        const auto column = [&](Index k) { return block + fj[k] * chunk_rows; };
        if (n == chunk_rows) {  // a full chunk: the sum stays in registers (a fixed-size Eigen array)
          using chunk = Eigen::Array<T, chunk_rows, 1>;
          using source = Eigen::Map<const Eigen::Array<float, chunk_rows, 1>>;
          chunk sum = chunk::Zero() + source(column(0)).template cast<T>();
          for (Index k = 1; k < counts[j]; ++k) sum += source(column(k)).template cast<T>();
          Eigen::Map<chunk>{values} = sum;
        } else {
          for (Index r = 0; r < n; ++r) values[r] = T(0) + static_cast<T>(column(0)[r]);
          for (Index k = 1; k < counts[j]; ++k)
            for (Index r = 0; r < n; ++r) values[r] += static_cast<T>(column(k)[r]);
        }
        if constexpr (std::is_same_v<T, float>) {
          detail::tanh_to_float(values, values, n);
        } else {
          for (Index r = 0; r < n; ++r) values[r] = static_cast<T>(std::tanh(static_cast<double>(values[r])));
        }
      }
    }
  }

  template <class T>
  void fingerprint(const Index* frag, Index count, molecule_features f, T* out) const {
    std::fill(out, out + o_.fingerprint_bits, T(0));
    for (Index k = 0; k < count; ++k)
      for (Index b = 0; b < o_.bits_per_fragment; ++b) {
        T& bit = out[bits_[static_cast<std::size_t>(frag[k] * o_.bits_per_fragment + b)]];
        bit = f == molecule_features::fingerprint ? T(1) : bit + T(1);
      }
  }

  synthetic_library_options o_;
  std::vector<Index> bits_;            // fragment f sets bits_[f * bits_per_fragment + b]
  std::vector<double> contribution_;   // binding contribution of each fragment
  /// Rows [c * chunk_rows, (c + 1) * chunk_rows) of fragment f's column of P are column
  /// c * vocabulary + f (the last chunk padded with zeros).
  static constexpr Index chunk_rows = 128;
  host_matrix<float> projection_;
};

/// A contiguous range of a synthetic library as a dataset (features, label reg): molecules
/// `first .. first + count - 1`. Nothing is stored; every gather generates its molecules.
template <class T = float>
class SyntheticLibraryDataset {
 public:
  using scalar = T;

  /// Whether gathers compute each molecule's label. A screen ranks by predictions alone, and
  /// the label costs a tenth of a descriptor molecule's generation (a normal draw and the score).
  enum class labels { computed, skipped };

  SyntheticLibraryDataset(const SyntheticLibrary& library, molecule_features features, std::uint64_t first, Index count,
                          labels targets = labels::computed)
      : library_(&library), features_(features), first_(first), count_(count), labels_(targets) {
    if (count < 0) throw config_error("SyntheticLibraryDataset: negative molecule count");
  }

  Index size() const { return count_; }
  Index input_width() const { return library_->width(features_); }
  Index target_width() const { return 1; }
  std::uint64_t first() const { return first_; }
  molecule_features features() const { return features_; }
  /// Whether gathers compute the labels; where they do not, the targets are NaN.
  bool has_labels() const { return labels_ == labels::computed; }

  void gather(const Index* indices, Index count, host_matrix<T>& x, host_matrix<T>& y) const {
    x.resize(input_width(), count);
    y.resize(1, count);
    for (Index j = 0; j < count; ++j)
      if (indices[j] < 0 || indices[j] >= count_)
        throw data_error(detail::concat("SyntheticLibraryDataset: sample ", indices[j], " out of range [0, ", count_, ")"));
    std::vector<std::uint64_t> ids(static_cast<std::size_t>(count));
    for (Index j = 0; j < count; ++j) ids[static_cast<std::size_t>(j)] = first_ + static_cast<std::uint64_t>(indices[j]);
    // Molecules are independent pure functions of their id: each thread draws a contiguous part.
    Index parts = 1;
#if defined(_OPENMP)
    if (count >= 256) parts = omp_get_max_threads();
#pragma omp parallel for schedule(static) if (parts > 1)
#endif
    for (Index p = 0; p < parts; ++p) {
      const Index begin = count * p / parts, end = count * (p + 1) / parts;
      library_->draw(ids.data() + begin, end - begin, features_, x.data() + begin * x.rows(), x.rows(),
                     has_labels() ? y.data() + begin : nullptr);
    }
    if (!has_labels()) y.setConstant(std::numeric_limits<T>::quiet_NaN());
  }

 private:
  const SyntheticLibrary* library_;
  molecule_features features_;
  std::uint64_t first_;
  Index count_;
  labels labels_;
};

}  // namespace strata
