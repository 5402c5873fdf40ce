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
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "../core/random.hpp"
#include "../core/tensor.hpp"

namespace strata {

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
    const random_stream projection(o_.seed, purpose::data, 0x11D);
    projection_.resize(o_.descriptor_width, o_.vocabulary);
    for (Index k = 0; k < projection_.size(); ++k)
      projection_.data()[k] = static_cast<float>(0.35 * projection.normal(static_cast<std::uint64_t>(k)));
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
  void features(std::uint64_t id, molecule_features f, T* out) const {
    Index frag[max_fragments_limit];
    const Index count = fragments(id, frag);
    if (f == molecule_features::descriptors) {
      std::fill(out, out + o_.descriptor_width, T(0));
      for (Index k = 0; k < count; ++k) {
        const float* column = projection_.data() + frag[k] * o_.descriptor_width;
        for (Index r = 0; r < o_.descriptor_width; ++r) out[r] += static_cast<T>(column[r]);
      }
      for (Index r = 0; r < o_.descriptor_width; ++r) out[r] = static_cast<T>(std::tanh(static_cast<double>(out[r])));
      return;
    }
    std::fill(out, out + o_.fingerprint_bits, T(0));
    for (Index k = 0; k < count; ++k)
      for (Index b = 0; b < o_.bits_per_fragment; ++b) {
        T& bit = out[bits_[static_cast<std::size_t>(frag[k] * o_.bits_per_fragment + b)]];
        bit = f == molecule_features::fingerprint ? T(1) : bit + T(1);
      }
  }

  /// The true docking score of molecule `id` (negative; lower binds better).
  double score(std::uint64_t id) const {
    Index frag[max_fragments_limit];
    const Index count = fragments(id, frag);
    double strength = 0.0;
    for (Index k = 0; k < count; ++k) strength += contribution_[static_cast<std::size_t>(frag[k])];
    strength = 14.0 * std::tanh(strength / 14.0);  // binding saturates
    const random_stream rng(o_.seed, purpose::data, 0x300000000ull + id);
    return -(strength + o_.noise * rng.normal(0));
  }

  /// The regression label of the paper: reg = max(-score, 0) (higher is better).
  double label(std::uint64_t id) const { return std::max(-score(id), 0.0); }

 private:
  synthetic_library_options o_;
  std::vector<Index> bits_;            // fragment f sets bits_[f * bits_per_fragment + b]
  std::vector<double> contribution_;   // binding contribution of each fragment
  host_matrix<float> projection_;      // descriptor_width x vocabulary
};

/// A contiguous range of a synthetic library as a dataset (features, label reg): molecules
/// `first .. first + count - 1`. Nothing is stored; every gather generates its molecules.
template <class T = float>
class SyntheticLibraryDataset {
 public:
  using scalar = T;

  SyntheticLibraryDataset(const SyntheticLibrary& library, molecule_features features, std::uint64_t first, Index count)
      : library_(&library), features_(features), first_(first), count_(count) {
    if (count < 0) throw config_error("SyntheticLibraryDataset: negative molecule count");
  }

  Index size() const { return count_; }
  Index input_width() const { return library_->width(features_); }
  Index target_width() const { return 1; }
  std::uint64_t first() const { return first_; }
  molecule_features features() const { return features_; }

  void gather(const Index* indices, Index count, host_matrix<T>& x, host_matrix<T>& y) const {
    x.resize(input_width(), count);
    y.resize(1, count);
    for (Index j = 0; j < count; ++j)
      if (indices[j] < 0 || indices[j] >= count_)
        throw data_error(detail::concat("SyntheticLibraryDataset: sample ", indices[j], " out of range [0, ", count_, ")"));
    // Molecules are independent pure functions of their id: generate them on all threads.
#if defined(_OPENMP)
#pragma omp parallel for schedule(static) if (count >= 256)
#endif
    for (Index j = 0; j < count; ++j) {
      const std::uint64_t id = first_ + static_cast<std::uint64_t>(indices[j]);
      library_->features(id, features_, x.data() + j * x.rows());
      y(0, j) = static_cast<T>(library_->label(id));
    }
  }

 private:
  const SyntheticLibrary* library_;
  molecule_features features_;
  std::uint64_t first_;
  Index count_;
};

}  // namespace strata
