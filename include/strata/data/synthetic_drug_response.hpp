#pragma once
/// \file synthetic_drug_response.hpp
/// A drug-response generator with the real NCI-ALMANAC shapes (60 cells, 104 drugs, 921 / 3,829
/// features, 305,626 tuples; docs/design.md §2) and a **known ceiling**, for the examples and tests:
/// no real data can be downloaded here, and a generator with a stated best-achievable R² tells
/// whether a training run is good, not just whether it ran.
///
/// The model behind it:
///   * every cell c and drug d has latent factors z ~ N(0, I_k);
///   * each feature is a noisy nonlinear map of the factors, tanh(p_j . z + b_j) + noise; drug
///     descriptors also get wildly different per-column scales and offsets, a few missing
///     values and some all-missing columns, as Dragon descriptor tables have;
///   * the effect of drug d on cell c is a(c, d) = tanh(z_c . z_d / sqrt(k)), and the response
///     is a1 + a2 - a1 a2 / 2: symmetric in the two drugs, so one shared drug encoder is the
///     right inductive bias. It is centred per cell, so the cell alone predicts nothing, then
///     scaled to a growth-like range (mean 0.35, standard deviation 0.45);
///   * Gaussian noise with variance var(signal) (1 - ceiling) / ceiling is added, so no
///     predictor can exceed R² = ceiling on average (0.92 by default).
/// Everything is counter-based: for given table widths and drug count, a feature depends only on
/// (seed, entity, column) and a tuple's selection rank, orientation and noise only on (seed,
/// cell, drug 1, drug 2); the response scale is fitted once over the selected tuples.
///
/// Controls, which must train to R² ≈ 0: `scrambled_labels` permutes the responses across tuples;
/// `noise_drugs` replaces the drug table by pure noise and shows each tuple the features of
/// randomly drawn drugs, so the drug inputs carry no information about the response.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iomanip>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../core/random.hpp"
#include "drug_response.hpp"

namespace strata {

/// The generator's negative controls.
enum class synthetic_control { none, scrambled_labels, noise_drugs };

/// Sizes and knobs of the synthetic drug-response generator; the defaults are the real shapes.
struct synthetic_drug_response_options {
  Index cells = 60;               ///< cell lines
  Index drugs = 104;              ///< drugs
  Index cell_width = 921;         ///< expression features per cell (LINCS-1000 landmark genes)
  Index drug_width = 3829;        ///< descriptors per drug (Dragon7)
  Index tuples = 305626;          ///< (cell, drug 1, drug 2) tuples; capped at cells * C(drugs, 2)
  Index latent = 6;               ///< latent factors per entity
  double ceiling = 0.92;          ///< best achievable R² (sets the label noise)
  double feature_noise = 0.2;     ///< standard deviation of the noise on every feature
  double missing_fraction = 0.002;  ///< drug descriptor values left missing (NaN)
  Index empty_drug_columns = 4;   ///< drug descriptor columns with no value at all
  std::uint64_t seed = 1;         ///< the data set is a pure function of the seed and the sizes
  synthetic_control control = synthetic_control::none;  ///< a negative control instead of the real task

  /// Throws config_error for sizes or rates that make no sense.
  void validate() const {
    if (cells < 1 || drugs < 2 || cell_width < 1 || drug_width < 1 || tuples < 1 || latent < 1)
      throw config_error(detail::concat("synthetic drug response: sizes must be positive (cells ", cells, ", drugs ",
                                        drugs, " >= 2, widths ", cell_width, "/", drug_width, ", tuples ", tuples,
                                        ", latent ", latent, ")"));
    if (!(ceiling > 0.0 && ceiling <= 1.0))
      throw config_error(detail::concat("synthetic drug response: the ceiling must be in (0, 1], got ", ceiling));
    if (!(feature_noise >= 0.0) || !(missing_fraction >= 0.0 && missing_fraction < 1.0))
      throw config_error("synthetic drug response: feature noise must be >= 0 and the missing fraction in [0, 1)");
    if (empty_drug_columns < 0 || empty_drug_columns >= drug_width)
      throw config_error(detail::concat("synthetic drug response: ", empty_drug_columns,
                                        " empty drug columns leave no descriptors of ", drug_width));
  }
};

/// What the generator produces: the data, the noiseless response of every tuple and the ceiling.
template <class T = float>
struct synthetic_drug_response {
  drug_response_data<T> data;
  std::vector<double> signal;  ///< noiseless response per tuple (before any label scrambling)
  double ceiling = 0.0;        ///< best achievable R² of any predictor (0 for the controls)
};

namespace detail {

/// Stream ids of the generator's random draws (one per independent quantity).
enum synthetic_stream : std::uint64_t {
  cell_factors = 1, drug_factors, cell_projection, drug_projection, cell_noise, drug_noise, drug_column_scale,
  drug_missing, tuple_rank, tuple_orientation, label_noise, label_scramble, noise_drug_draw
};

/// Features of `count` entities: tanh(P z + b) + noise, `width x count`.
template <class T>
host_matrix<T> synthetic_features(const random_stream& rng, const std::vector<double>& factors, Index count,
                                  Index latent, Index width, std::uint64_t projection_stream, std::uint64_t noise_stream,
                                  double noise) {
  const random_stream projection = rng.substream(projection_stream), jitter = rng.substream(noise_stream);
  const double gain = 1.5 / std::sqrt(static_cast<double>(latent));
  host_matrix<T> out(width, count);
  for (Index j = 0; j < width; ++j) {
    const auto row = static_cast<std::uint64_t>(j * (latent + 1));
    const double bias = 0.5 * projection.normal(row + static_cast<std::uint64_t>(latent));
    for (Index e = 0; e < count; ++e) {
      double dot = bias;
      for (Index k = 0; k < latent; ++k)
        dot += gain * projection.normal(row + static_cast<std::uint64_t>(k)) * factors[static_cast<std::size_t>(e * latent + k)];
      out(j, e) = static_cast<T>(std::tanh(dot) + noise * jitter.normal(static_cast<std::uint64_t>(e * width + j)));
    }
  }
  return out;
}

inline std::string numbered(const char* prefix, Index i, int digits) {
  std::ostringstream s;
  s << prefix << std::setw(digits) << std::setfill('0') << i;
  return s.str();
}

/// Latent factors of `count` entities, `latent` each, entity after entity, from stream `stream`.
inline std::vector<double> latent_factors(const random_stream& rng, std::uint64_t stream, Index count, Index latent) {
  std::vector<double> z(static_cast<std::size_t>(count * latent));
  for (std::size_t i = 0; i < z.size(); ++i) z[i] = rng.substream(stream).normal(i);
  return z;
}

/// Feature column names PREFIX0001, PREFIX0002, ...
inline std::vector<std::string> numbered_columns(const char* prefix, Index width) {
  std::vector<std::string> columns;
  for (Index j = 0; j < width; ++j) columns.push_back(numbered(prefix, j + 1, 4));
  return columns;
}

/// A table of entities `ids` whose `width` features (columns PREFIX0001...) are made from their
/// latent factors by `synthetic_features`.
template <class T>
EntityTable<T> synthetic_table(std::vector<std::string> ids, const char* column_prefix, const random_stream& rng,
                               const std::vector<double>& factors, Index latent, Index width, std::uint64_t projection_stream,
                               std::uint64_t noise_stream, double noise) {
  const auto count = static_cast<Index>(ids.size());
  return EntityTable<T>(std::move(ids), numbered_columns(column_prefix, width),
                        synthetic_features<T>(rng, factors, count, latent, width, projection_stream, noise_stream, noise));
}

/// Gain and offset of descriptor column j: descriptor columns live on very different scales
/// (counts, areas, indices), so scaling matters.
inline std::pair<double, double> descriptor_scale(const random_stream& rng, Index j) {
  const random_stream scale = rng.substream(drug_column_scale);
  return {std::exp(1.5 * scale.normal(static_cast<std::uint64_t>(2 * j))), 10.0 * scale.normal(static_cast<std::uint64_t>(2 * j + 1))};
}

}  // namespace detail

/// Generates a synthetic drug-response data set (see the file comment for the model).
template <class T = float>
synthetic_drug_response<T> generate_drug_response(const synthetic_drug_response_options& o) {
  o.validate();
  const random_stream rng(o.seed, purpose::data);
  const Index K = o.latent;
  const std::vector<double> zc = detail::latent_factors(rng, detail::cell_factors, o.cells, K),
                            zd = detail::latent_factors(rng, detail::drug_factors, o.drugs, K);

  synthetic_drug_response<T> out;
  drug_response_data<T>& data = out.data;

  // Entity tables.
  {
    std::vector<std::string> ids;
    for (Index c = 0; c < o.cells; ++c) ids.push_back(detail::numbered("NCI60.SYN-", c + 1, 2));
    data.cells = detail::synthetic_table<T>(std::move(ids), "GENE", rng, zc, K, o.cell_width, detail::cell_projection,
                                            detail::cell_noise, o.feature_noise);
  }
  {
    std::vector<std::string> ids;
    for (Index d = 0; d < o.drugs; ++d) ids.push_back("NSC." + std::to_string(700000 + 37 * d));
    host_matrix<T> f;
    if (o.control == synthetic_control::noise_drugs) {
      const random_stream noise = rng.substream(detail::drug_noise).substream(1);
      f.resize(o.drug_width, o.drugs);
      for (Index i = 0; i < f.size(); ++i) f.data()[i] = static_cast<T>(noise.normal(static_cast<std::uint64_t>(i)));
    } else {
      f = detail::synthetic_features<T>(rng, zd, o.drugs, K, o.drug_width, detail::drug_projection, detail::drug_noise,
                                        o.feature_noise);
    }
    const random_stream missing = rng.substream(detail::drug_missing);
    const Index spacing = o.drug_width / (o.empty_drug_columns + 1);
    for (Index j = 0; j < o.drug_width; ++j) {
      const bool empty = o.empty_drug_columns > 0 && j % spacing == spacing - 1 && j / spacing < o.empty_drug_columns;
      const auto [gain, offset] = detail::descriptor_scale(rng, j);
      for (Index d = 0; d < o.drugs; ++d) {
        const bool gone = empty || missing.uniform(static_cast<std::uint64_t>(d * o.drug_width + j)) < o.missing_fraction;
        f(j, d) = gone ? static_cast<T>(NAN) : static_cast<T>(gain * static_cast<double>(f(j, d)) + offset);
      }
    }
    data.drugs = EntityTable<T>(std::move(ids), detail::numbered_columns("DESC", o.drug_width), std::move(f));
  }

  // The response of every candidate tuple (c, d1 < d2), centred per cell.
  const Index D = o.drugs;
  const auto effect = [&](Index c, Index d) {
    double dot = 0.0;
    for (Index k = 0; k < K; ++k)
      dot += zc[static_cast<std::size_t>(c * K + k)] * zd[static_cast<std::size_t>(d * K + k)];
    return std::tanh(dot / std::sqrt(static_cast<double>(K)));
  };
  std::vector<double> a(static_cast<std::size_t>(o.cells * D));
  for (Index c = 0; c < o.cells; ++c)
    for (Index d = 0; d < D; ++d) a[static_cast<std::size_t>(c * D + d)] = effect(c, d);
  const auto raw = [&](Index c, Index d1, Index d2) {
    const double a1 = a[static_cast<std::size_t>(c * D + d1)], a2 = a[static_cast<std::size_t>(c * D + d2)];
    return a1 + a2 - 0.5 * a1 * a2;
  };
  std::vector<double> cell_mean(static_cast<std::size_t>(o.cells), 0.0);
  for (Index c = 0; c < o.cells; ++c) {
    double sum = 0.0;
    for (Index d1 = 0; d1 < D; ++d1)
      for (Index d2 = d1 + 1; d2 < D; ++d2) sum += raw(c, d1, d2);
    cell_mean[static_cast<std::size_t>(c)] = sum / static_cast<double>(D * (D - 1) / 2);
  }

  // Select tuples: the candidates with the smallest counter-based rank, in rank order.
  const random_stream rank = rng.substream(detail::tuple_rank), orient = rng.substream(detail::tuple_orientation);
  const auto key = [&](Index c, Index d1, Index d2) { return static_cast<std::uint64_t>((c * D + d1) * D + d2); };
  std::vector<std::pair<std::uint64_t, std::uint64_t>> candidates;
  candidates.reserve(static_cast<std::size_t>(o.cells * D * (D - 1) / 2));
  for (Index c = 0; c < o.cells; ++c)
    for (Index d1 = 0; d1 < D; ++d1)
      for (Index d2 = d1 + 1; d2 < D; ++d2) candidates.emplace_back(rank.integer(key(c, d1, d2)), key(c, d1, d2));
  const auto count = static_cast<std::size_t>(std::min<Index>(o.tuples, static_cast<Index>(candidates.size())));
  std::nth_element(candidates.begin(), candidates.begin() + static_cast<std::ptrdiff_t>(count - 1), candidates.end());
  candidates.resize(count);
  std::sort(candidates.begin(), candidates.end());

  data.tuples.resize(count);
  out.signal.resize(count);
  for (std::size_t i = 0; i < count; ++i) {
    const std::uint64_t k = candidates[i].second;
    const auto c = static_cast<Index>(k / static_cast<std::uint64_t>(D * D));
    auto d1 = static_cast<Index>(k / static_cast<std::uint64_t>(D) % static_cast<std::uint64_t>(D));
    auto d2 = static_cast<Index>(k % static_cast<std::uint64_t>(D));
    if (orient.integer(k) & 1u) std::swap(d1, d2);  // drug order carries no meaning
    data.tuples[i] = response_tuple{static_cast<std::int32_t>(c), static_cast<std::int32_t>(d1),
                                    static_cast<std::int32_t>(d2), 0.0f};
    out.signal[i] = raw(c, d1, d2) - cell_mean[static_cast<std::size_t>(c)];
  }

  // Scale to a growth-like range, then add the noise that fixes the ceiling.
  double mean = 0.0, var = 0.0;
  for (const double s : out.signal) mean += s;
  mean /= static_cast<double>(count);
  for (const double s : out.signal) var += (s - mean) * (s - mean);
  var /= static_cast<double>(count);
  const double gain = var > 0 ? 0.45 / std::sqrt(var) : 1.0;
  for (double& s : out.signal) s = 0.35 + gain * (s - mean);
  const double noise_sd = 0.45 * std::sqrt((1.0 - o.ceiling) / o.ceiling);
  const random_stream noise = rng.substream(detail::label_noise);
  for (std::size_t i = 0; i < count; ++i)
    data.tuples[i].response = static_cast<float>(out.signal[i] + noise_sd * noise.normal(candidates[i].second));
  out.ceiling = o.ceiling;

  if (o.control == synthetic_control::scrambled_labels) {
    const random_stream scramble = rng.substream(detail::label_scramble);
    for (std::size_t i = count; i > 1; --i)
      std::swap(data.tuples[i - 1].response, data.tuples[static_cast<std::size_t>(scramble.below(i, i))].response);
    out.ceiling = 0.0;
  } else if (o.control == synthetic_control::noise_drugs) {
    const random_stream draw = rng.substream(detail::noise_drug_draw);
    for (std::size_t i = 0; i < count; ++i) {
      data.tuples[i].drug1 = static_cast<std::int32_t>(draw.below(static_cast<std::uint64_t>(D), 2 * candidates[i].second));
      data.tuples[i].drug2 = static_cast<std::int32_t>(draw.below(static_cast<std::uint64_t>(D), 2 * candidates[i].second + 1));
    }
    out.ceiling = 0.0;
  }
  return out;
}

/// Parses "none", "scramble" / "scrambled-labels" or "noise-drugs".
inline synthetic_control parse_synthetic_control(const std::string& name) {
  if (name == "none" || name.empty()) return synthetic_control::none;
  if (name == "scramble" || name == "scrambled-labels") return synthetic_control::scrambled_labels;
  if (name == "noise-drugs") return synthetic_control::noise_drugs;
  throw config_error("unknown control '" + name + "' (expected none, scramble or noise-drugs)");
}

}  // namespace strata
