#pragma once
/// \file synthetic_studies.hpp
/// Several synthetic drug-screening studies drawn from one shared biology, each with a **known
/// ceiling**: what transfer learning across studies (Zhu et al., Sci. Rep. 10:18040, 2020) needs
/// to be tested here, where no real study can be downloaded.
///
/// The model behind it:
///   * a pool of cells and a pool of drugs, each with latent factors z ~ N(0, I_k), and feature
///     tables made from them exactly as `generate_drug_response` makes its tables (noisy
///     nonlinear maps of the factors; descriptor columns on wildly different scales);
///   * the biology every study measures: b(c, d) = tanh(z_c . z_d / sqrt(k)) + 0.5 tanh(z_d0)
///     + 0.3 tanh(z_c0): an interaction, a drug potency and a cell sensitivity;
///   * each study measures a window of the cell pool and a window of the drug pool (so studies
///     overlap partially, by construction: `study_overlap` reports it) and a seeded selection of
///     `pairs` of those (cell, drug) pairs, through its own assay: an AUC-like response
///     logistic(gain b + offset) in (0, 1), plus Gaussian noise sized so that no predictor can
///     exceed R² = the study's ceiling on its responses (noise variance var(clean) (1 - c) / c).
/// The same (cell, drug) pair thus has different responses in two studies, related by a
/// monotone map: a model trained on one study must be refined, not just reused, on another.
///
/// The defaults name four studies for the real ones, sized like them relative to each other: two
/// large sources (CTRP, GDSC) with many drugs, two small targets (CCLE, gCSI) with few. CCLE's
/// 300 cells all lie in CTRP's window, 15 of its 24 drugs too: transfer from CTRP can help it
/// on new cells more than on new drugs, as in the paper's results.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../core/random.hpp"
#include "studies.hpp"
#include "synthetic_drug_response.hpp"

namespace strata {

/// One synthetic study: which cells and drugs it measures, how many pairs, and its assay.
struct synthetic_study {
  std::string name;
  Index first_cell = 0, cells = 0;  ///< the window [first_cell, first_cell + cells) of the cell pool
  Index first_drug = 0, drugs = 0;  ///< the window of the drug pool
  Index pairs = 0;                  ///< (cell, drug) pairs measured, at most cells x drugs
  double gain = 1.5, offset = 0.0;  ///< the assay: logistic(gain x biology + offset)
  double ceiling = 0.85;            ///< best achievable R² on this study's responses
};

/// The four default studies (see the file comment).
inline std::vector<synthetic_study> default_synthetic_studies() {
  return {{"CTRP", 0, 450, 0, 300, 120000, 1.6, 0.0, 0.85},
          {"GDSC", 150, 450, 200, 200, 80000, 1.3, -0.4, 0.80},
          {"CCLE", 100, 300, 285, 24, 6000, 2.0, 0.5, 0.80},
          {"gCSI", 300, 300, 290, 16, 4000, 2.4, 0.2, 0.75}};
}

/// Sizes and knobs of the multi-study generator.
struct synthetic_studies_options {
  Index cells = 600;            ///< the cell pool
  Index drugs = 400;            ///< the drug pool
  Index cell_width = 100;       ///< expression features per cell
  Index drug_width = 150;       ///< descriptors per drug
  Index latent = 6;             ///< latent factors per entity
  double feature_noise = 0.2;   ///< standard deviation of the noise on every feature
  std::uint64_t seed = 1;       ///< the data are a pure function of the seed and the sizes
  std::vector<synthetic_study> studies = default_synthetic_studies();

  /// Throws config_error for sizes that make no sense, naming the study.
  void validate() const {
    if (cells < 1 || drugs < 1 || cell_width < 1 || drug_width < 1 || latent < 1)
      throw config_error(detail::concat("synthetic studies: sizes must be positive (cells ", cells, ", drugs ", drugs,
                                        ", widths ", cell_width, "/", drug_width, ", latent ", latent, ")"));
    if (!(feature_noise >= 0.0)) throw config_error("synthetic studies: the feature noise must be >= 0");
    if (studies.empty()) throw config_error("synthetic studies: no study to generate");
    for (std::size_t s = 0; s < studies.size(); ++s) {
      const synthetic_study& st = studies[s];
      const auto bad = [&](const std::string& what) { return config_error("synthetic study '" + st.name + "': " + what); };
      if (st.name.empty()) throw config_error(detail::concat("synthetic study ", s, " has no name"));
      for (std::size_t t = 0; t < s; ++t)
        if (studies[t].name == st.name) throw bad("named twice");
      if (st.cells < 1 || st.first_cell < 0 || st.first_cell + st.cells > cells)
        throw bad(detail::concat("cells [", st.first_cell, ", ", st.first_cell + st.cells, ") outside the pool of ", cells));
      if (st.drugs < 1 || st.first_drug < 0 || st.first_drug + st.drugs > drugs)
        throw bad(detail::concat("drugs [", st.first_drug, ", ", st.first_drug + st.drugs, ") outside the pool of ", drugs));
      if (st.pairs < 1 || st.pairs > st.cells * st.drugs)
        throw bad(detail::concat(st.pairs, " pairs asked of ", st.cells, " cells x ", st.drugs, " drugs"));
      if (!(st.ceiling > 0.0 && st.ceiling <= 1.0)) throw bad(detail::concat("the ceiling must be in (0, 1], got ", st.ceiling));
      if (!std::isfinite(st.gain) || st.gain == 0.0 || !std::isfinite(st.offset))
        throw bad("the assay's gain must be finite and non-zero and its offset finite");
    }
  }
};

/// What the multi-study generator produces: the data, every tuple's noiseless response, and each
/// study's ceiling (in study order).
template <class T = float>
struct synthetic_studies {
  multi_study_data<T> data;
  std::vector<double> signal;    ///< noiseless response per tuple
  std::vector<double> ceilings;  ///< best achievable R² per study
};

namespace detail {
/// Stream ids of this generator's own draws (the feature tables use synthetic_stream's).
enum synthetic_study_stream : std::uint64_t { study_pair_rank = 101, study_noise = 102 };
}  // namespace detail

/// Generates the studies (see the file comment for the model).
template <class T = float>
synthetic_studies<T> generate_studies(const synthetic_studies_options& o) {
  o.validate();
  const random_stream rng(o.seed, purpose::data);
  const Index K = o.latent;
  const std::vector<double> zc = detail::latent_factors(rng, detail::cell_factors, o.cells, K),
                            zd = detail::latent_factors(rng, detail::drug_factors, o.drugs, K);

  synthetic_studies<T> out;
  multi_study_data<T>& data = out.data;
  std::vector<std::string> cell_ids, drug_ids;
  for (Index c = 0; c < o.cells; ++c) cell_ids.push_back(detail::numbered("CL-", c + 1, 4));
  for (Index d = 0; d < o.drugs; ++d) drug_ids.push_back(detail::numbered("DRUG-", d + 1, 4));
  data.cells = detail::synthetic_table<T>(std::move(cell_ids), "GENE", rng, zc, K, o.cell_width, detail::cell_projection,
                                          detail::cell_noise, o.feature_noise);
  data.drugs = detail::synthetic_table<T>(std::move(drug_ids), "DESC", rng, zd, K, o.drug_width, detail::drug_projection,
                                          detail::drug_noise, o.feature_noise);
  host_matrix<T>& f = data.drugs.features();
  for (Index j = 0; j < o.drug_width; ++j) {
    const auto [gain, offset] = detail::descriptor_scale(rng, j);
    for (Index d = 0; d < o.drugs; ++d) f(j, d) = static_cast<T>(gain * static_cast<double>(f(j, d)) + offset);
  }

  const auto biology = [&](Index c, Index d) {
    double dot = 0.0;
    for (Index k = 0; k < K; ++k) dot += zc[static_cast<std::size_t>(c * K + k)] * zd[static_cast<std::size_t>(d * K + k)];
    return std::tanh(dot / std::sqrt(static_cast<double>(K))) + 0.5 * std::tanh(zd[static_cast<std::size_t>(d * K)]) +
           0.3 * std::tanh(zc[static_cast<std::size_t>(c * K)]);
  };
  const random_stream rank = rng.substream(detail::study_pair_rank), noise = rng.substream(detail::study_noise);
  for (std::size_t s = 0; s < o.studies.size(); ++s) {
    const synthetic_study& st = o.studies[s];
    data.studies.push_back(st.name);
    // The study's pairs: those of its windows with the smallest counter-based rank, in rank order.
    const auto key = [&](Index c, Index d) { return static_cast<std::uint64_t>((static_cast<Index>(s) * o.cells + c) * o.drugs + d); };
    std::vector<std::pair<std::uint64_t, std::uint64_t>> candidates;
    candidates.reserve(static_cast<std::size_t>(st.cells * st.drugs));
    for (Index c = st.first_cell; c < st.first_cell + st.cells; ++c)
      for (Index d = st.first_drug; d < st.first_drug + st.drugs; ++d) candidates.emplace_back(rank.integer(key(c, d)), key(c, d));
    const auto count = static_cast<std::size_t>(st.pairs);
    std::nth_element(candidates.begin(), candidates.begin() + static_cast<std::ptrdiff_t>(count - 1), candidates.end());
    candidates.resize(count);
    std::sort(candidates.begin(), candidates.end());

    std::vector<double> clean(count);
    double mean = 0.0, var = 0.0;
    for (std::size_t i = 0; i < count; ++i) {
      const std::uint64_t k = candidates[i].second % static_cast<std::uint64_t>(o.cells * o.drugs);
      const auto c = static_cast<Index>(k / static_cast<std::uint64_t>(o.drugs)), d = static_cast<Index>(k % static_cast<std::uint64_t>(o.drugs));
      clean[i] = 1.0 / (1.0 + std::exp(-(st.gain * biology(c, d) + st.offset)));
      mean += clean[i];
      data.tuples.push_back(response_tuple{static_cast<std::int32_t>(c), static_cast<std::int32_t>(d), static_cast<std::int32_t>(d), 0.0f});
      data.study_of.push_back(static_cast<std::int32_t>(s));
    }
    mean /= static_cast<double>(count);
    for (const double v : clean) var += (v - mean) * (v - mean);
    var /= static_cast<double>(count);
    const double noise_sd = std::sqrt(var * (1.0 - st.ceiling) / st.ceiling);
    const std::size_t first = data.tuples.size() - count;
    for (std::size_t i = 0; i < count; ++i) {
      data.tuples[first + i].response = static_cast<float>(clean[i] + noise_sd * noise.normal(candidates[i].second));
      out.signal.push_back(clean[i]);
    }
    out.ceilings.push_back(st.ceiling);
  }
  return out;
}

}  // namespace strata
