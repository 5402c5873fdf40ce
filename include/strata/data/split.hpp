#pragma once
/// \file split.hpp
/// Train/validation partitions of drug-response tuples, after Zhu et al. (Sci. Rep. 2020):
///   random      over tuples                        ("drug repurposing")
///   cell-blind  whole cell lines held out           ("precision oncology")
///   drug-blind  whole drugs held out                ("new drug development")
/// plus k-fold versions of each (also with a rotating validation fold), a hold-out helper (a
/// tournament or validation set carved from a training set) and shards (a trainer's or rank's
/// share of the samples). Every choice is drawn from the counter-based generator, so a split
/// depends only on the seed and the data.

#include <algorithm>
#include <numeric>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "../core/random.hpp"
#include "drug_response.hpp"

namespace strata {

/// How tuples are assigned to training and validation.
enum class split_scheme { random, cell_blind, drug_blind };

/// Parses "random", "cell" / "cell-blind" or "drug" / "drug-blind".
inline split_scheme parse_split_scheme(const std::string& name) {
  if (name == "random") return split_scheme::random;
  if (name == "cell" || name == "cell-blind") return split_scheme::cell_blind;
  if (name == "drug" || name == "drug-blind") return split_scheme::drug_blind;
  throw config_error("unknown split '" + name + "' (expected random, cell or drug)");
}

/// "random", "cell-blind" or "drug-blind".
inline const char* to_string(split_scheme s) {
  switch (s) {
    case split_scheme::random: return "random";
    case split_scheme::cell_blind: return "cell-blind";
    case split_scheme::drug_blind: return "drug-blind";
  }
  return "?";
}

/// Indices (into the tuple list) of the training and validation samples, each ascending.
struct split {
  std::vector<Index> train, validation;
};

/// A permutation of 0..n-1 that depends only on (seed, stream).
inline std::vector<Index> seeded_permutation(Index n, std::uint64_t seed, std::uint64_t stream = 0) {
  return permutation(n, random_stream(seed, purpose::split).substream(stream));
}

namespace detail {

inline void check_fraction(double fraction) {
  if (!(fraction > 0.0 && fraction < 1.0))
    throw config_error(detail::concat("split: the validation fraction must be in (0, 1), got ", fraction));
}

/// Tuples whose held-out test is true go to validation, the others to training.
template <class Held>
split split_by(const std::vector<response_tuple>& tuples, Held&& held_out) {
  split s;
  for (std::size_t i = 0; i < tuples.size(); ++i) (held_out(tuples[i]) ? s.validation : s.train).push_back(static_cast<Index>(i));
  return s;
}

/// Entities of one kind, held out one by one in a seeded order until at least `fraction` of the
/// tuples are affected. `touches(tuple, entity_mask)` says whether a tuple involves a held entity.
template <class Touches>
split hold_out_entities(const std::vector<response_tuple>& tuples, Index entities, double fraction, std::uint64_t seed,
                        std::uint64_t stream, Touches&& touches) {
  std::vector<char> held(static_cast<std::size_t>(entities), 0);
  const auto target = static_cast<std::size_t>(std::ceil(fraction * static_cast<double>(tuples.size())));
  std::size_t affected = 0;
  for (const Index e : seeded_permutation(entities, seed, stream)) {
    if (affected >= target) break;
    held[static_cast<std::size_t>(e)] = 1;
    affected = 0;
    for (const auto& t : tuples) affected += touches(t, held) ? 1 : 0;
  }
  return split_by(tuples, [&](const response_tuple& t) { return touches(t, held); });
}

inline bool touches_cell(const response_tuple& t, const std::vector<char>& held) {
  return held[static_cast<std::size_t>(t.cell)] != 0;
}
inline bool touches_drug(const response_tuple& t, const std::vector<char>& held) {
  return held[static_cast<std::size_t>(t.drug1)] != 0 || held[static_cast<std::size_t>(t.drug2)] != 0;
}

}  // namespace detail

/// Splits `data`'s tuples so that about `validation_fraction` of them are validation samples.
/// Random: exactly round(fraction * n) validation tuples. Cell-/drug-blind: entities are held
/// out in a seeded order until at least that fraction of tuples involve one; a tuple involving
/// any held-out drug is a validation tuple, so no validation drug is ever seen in training.
template <class T>
split make_split(const drug_response_data<T>& data, split_scheme scheme, double validation_fraction, std::uint64_t seed) {
  detail::check_fraction(validation_fraction);
  const auto& tuples = data.tuples;
  switch (scheme) {
    case split_scheme::random: {
      const auto n = static_cast<Index>(tuples.size());
      const auto held = static_cast<Index>(std::llround(validation_fraction * static_cast<double>(n)));
      std::vector<char> is_validation(static_cast<std::size_t>(n), 0);
      const std::vector<Index> order = seeded_permutation(n, seed, 1);
      for (Index i = 0; i < held; ++i) is_validation[static_cast<std::size_t>(order[static_cast<std::size_t>(i)])] = 1;
      split s;
      for (Index i = 0; i < n; ++i) (is_validation[static_cast<std::size_t>(i)] ? s.validation : s.train).push_back(i);
      return s;
    }
    case split_scheme::cell_blind:
      return detail::hold_out_entities(tuples, data.cells.size(), validation_fraction, seed, 2, detail::touches_cell);
    case split_scheme::drug_blind:
      return detail::hold_out_entities(tuples, data.drugs.size(), validation_fraction, seed, 3, detail::touches_drug);
  }
  throw config_error("make_split: unknown scheme");
}

/// Indices of the training, validation and test samples of one fold, each ascending.
struct three_way_split {
  std::vector<Index> train, validation, test;
};

namespace detail {
/// The k seeded groups of k-fold cross-validation: `group[u]` is the fold in which unit u (a
/// tuple, a cell line or a drug, by scheme) is held out; `held(t, me, f)` whether tuple `t`
/// (number `me`) involves a unit of group f.
template <class T>
class fold_groups {
 public:
  fold_groups(const drug_response_data<T>& data, split_scheme scheme, Index k, std::uint64_t seed, const char* who)
      : scheme_(scheme) {
    // The units that occur: tables often hold entities no tuple uses (one study of several over
    // shared tables), and a group of those alone would be an empty fold.
    const Index table_units = scheme == split_scheme::random ? static_cast<Index>(data.tuples.size())
                              : scheme == split_scheme::cell_blind ? data.cells.size()
                                                                   : data.drugs.size();
    std::vector<Index> present;
    if (scheme == split_scheme::random) {
      present.resize(static_cast<std::size_t>(table_units));
      std::iota(present.begin(), present.end(), Index{0});
    } else {
      std::vector<char> used(static_cast<std::size_t>(table_units), 0);
      for (const auto& t : data.tuples) {
        if (scheme == split_scheme::cell_blind) {
          used[static_cast<std::size_t>(t.cell)] = 1;
        } else {
          used[static_cast<std::size_t>(t.drug1)] = 1;
          used[static_cast<std::size_t>(t.drug2)] = 1;
        }
      }
      for (Index u = 0; u < table_units; ++u)
        if (used[static_cast<std::size_t>(u)]) present.push_back(u);
    }
    const auto units = static_cast<Index>(present.size());
    if (k < 2 || k > units)
      throw config_error(concat(who, ": k must be in [2, ", units, "] for a ", to_string(scheme), " split of ", units,
                                scheme == split_scheme::random ? " tuples" : scheme == split_scheme::cell_blind ? " cells" : " drugs",
                                ", got ", k));
    group_.assign(static_cast<std::size_t>(table_units), -1);
    const std::vector<Index> order = seeded_permutation(units, seed, 10 + static_cast<std::uint64_t>(scheme));
    for (Index i = 0; i < units; ++i)
      group_[static_cast<std::size_t>(present[static_cast<std::size_t>(order[static_cast<std::size_t>(i)])])] = i * k / units;
  }

  bool held(const response_tuple& t, Index me, Index f) const {
    const auto in = [&](Index u) { return group_[static_cast<std::size_t>(u)] == f; };
    switch (scheme_) {
      case split_scheme::random: return in(me);
      case split_scheme::cell_blind: return in(t.cell);
      case split_scheme::drug_blind: return in(t.drug1) || in(t.drug2);
    }
    return false;
  }

 private:
  split_scheme scheme_;
  std::vector<Index> group_;
};
}  // namespace detail

/// k-fold cross-validation: fold i validates on the i-th of k seeded groups of tuples (random),
/// cell lines (cell-blind) or drugs (drug-blind) that the tuples involve (entities of the tables
/// that no tuple uses belong to no group, so no fold is empty), and trains on the tuples that
/// involve none of them. Random and cell-blind folds partition the tuples; in drug-blind folds a tuple whose two
/// drugs fall in different groups validates in both folds.
template <class T>
std::vector<split> k_fold(const drug_response_data<T>& data, split_scheme scheme, Index k, std::uint64_t seed) {
  const detail::fold_groups<T> groups(data, scheme, k, seed, "k_fold");
  std::vector<split> folds(static_cast<std::size_t>(k));
  for (Index f = 0; f < k; ++f) {
    Index i = 0;
    folds[static_cast<std::size_t>(f)] =
        detail::split_by(data.tuples, [&](const response_tuple& t) { return groups.held(t, i++, f); });
  }
  return folds;
}

/// k-fold cross-validation with a rotating validation fold, as Zhu et al. (Sci. Rep. 2020)
/// evaluate transfer learning: fold i tests on group i, validates (early stopping, model
/// choice) on group i+1 (mod k), and trains on the tuples that involve neither, with the same
/// seeded groups as `k_fold`. Random and cell-blind folds partition the tuples; in drug-blind
/// folds a tuple with a drug of each held group is a test tuple, so no test or validation drug
/// is ever trained on. Needs k >= 3 (a validation group apart from the test group and training).
/// `validation_offset` (1 to k-1) validates on group i + offset instead: the k-1 offsets give
/// the members of an ensemble cross-validation their own validation groups around one test group.
template <class T>
std::vector<three_way_split> k_fold_rotating(const drug_response_data<T>& data, split_scheme scheme, Index k,
                                             std::uint64_t seed, Index validation_offset = 1) {
  if (k < 3) throw config_error(detail::concat("k_fold_rotating: k must be at least 3 (test, validation, training), got ", k));
  if (validation_offset < 1 || validation_offset >= k)
    throw config_error(detail::concat("k_fold_rotating: the validation offset must be in [1, ", k - 1, "], got ", validation_offset));
  const detail::fold_groups<T> groups(data, scheme, k, seed, "k_fold_rotating");
  std::vector<three_way_split> folds(static_cast<std::size_t>(k));
  for (Index f = 0; f < k; ++f) {
    three_way_split& out = folds[static_cast<std::size_t>(f)];
    for (Index i = 0; i < static_cast<Index>(data.tuples.size()); ++i) {
      const response_tuple& t = data.tuples[static_cast<std::size_t>(i)];
      if (groups.held(t, i, f)) out.test.push_back(i);
      else if (groups.held(t, i, (f + validation_offset) % k)) out.validation.push_back(i);
      else out.train.push_back(i);
    }
  }
  return folds;
}

/// Carves a seeded `fraction` out of `rows` (e.g. a trainer's local tournament set out of its
/// training samples): `validation` gets round(fraction * n) of them, `train` the rest; both keep
/// the order of `rows`.
inline split hold_out(const std::vector<Index>& rows, double fraction, std::uint64_t seed) {
  detail::check_fraction(fraction);
  const auto n = static_cast<Index>(rows.size());
  const auto held = static_cast<Index>(std::llround(fraction * static_cast<double>(n)));
  std::vector<char> is_held(rows.size(), 0);
  const std::vector<Index> order = seeded_permutation(n, seed, 4);
  for (Index i = 0; i < held; ++i) is_held[static_cast<std::size_t>(order[static_cast<std::size_t>(i)])] = 1;
  split s;
  for (std::size_t i = 0; i < rows.size(); ++i) (is_held[i] ? s.validation : s.train).push_back(rows[i]);
  return s;
}

/// Shard `part` of `parts` of `rows`: contiguous, sizes differing by at most one, in order.
/// Used to give each trainer of a tournament (or each rank) its own samples.
inline std::vector<Index> shard(const std::vector<Index>& rows, Index part, Index parts) {
  if (parts < 1 || part < 0 || part >= parts)
    throw config_error(detail::concat("shard: part ", part, " of ", parts, " does not exist"));
  const auto n = static_cast<Index>(rows.size());
  const Index begin = part * n / parts, end = (part + 1) * n / parts;
  return {rows.begin() + begin, rows.begin() + end};
}

/// A random subsample of `count` of `rows` (all of them if count >= rows.size()), order kept.
inline std::vector<Index> subsample(const std::vector<Index>& rows, Index count, std::uint64_t seed) {
  if (count >= static_cast<Index>(rows.size())) return rows;
  if (count <= 0) throw config_error(detail::concat("subsample: the count must be positive, got ", count));
  std::vector<Index> order = seeded_permutation(static_cast<Index>(rows.size()), seed, 5);
  order.resize(static_cast<std::size_t>(count));
  std::sort(order.begin(), order.end());
  std::vector<Index> out;
  out.reserve(order.size());
  for (const Index i : order) out.push_back(rows[static_cast<std::size_t>(i)]);
  return out;
}

}  // namespace strata
