#pragma once
/// \file ltfb_policies.hpp
/// The three replaceable parts of a tournament round (train/ltfb.hpp), each a small policy:
///   Pairing       who plays whom: `std::vector<int> operator()(trainers, seed, round)` gives
///                 every trainer's partner (itself to sit out); the same on every rank
///   Adoption      which model a trainer keeps: `bool operator()(challenger, incumbent)` on the
///                 two scores of its tournament set, true to take the partner's
///   Perturbation  how an adopted model's hyperparameters are explored:
///                 `operator()(trainer, partner_learning_rate, draws)` sets the trainer's rate and
///                 may change the model's run-time settings, drawing only from `draws` (a stream
///                 keyed by seed, trainer and round, so a resumed run draws the same numbers)
/// The defaults are LBANN's rules (Jacobs et al., MLHPC 2017) with population-based jitter.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "../core/random.hpp"
#include "../parallel/tournament.hpp"

namespace strata {

/// Whether a tournament metric is better when higher.
inline bool higher_is_better(const std::string& metric) {
  if (metric == "loss" || metric == "mse" || metric == "mae" || metric == "rmse") return false;
  if (metric == "r2" || metric == "pearson" || metric == "spearman") return true;
  throw config_error("LTFB: unknown tournament metric '" + metric + "' (loss, mse, mae, rmse, r2, pearson, spearman)");
}

/// Consecutive entries of a seeded shuffle of the trainers play each other; with an odd count
/// the last one sits out.
struct RandomPairing {
  std::vector<int> operator()(int trainers, std::uint64_t seed, std::uint64_t round) const {
    return Tournament<Serial, SerialCommunicator>::pairing(trainers, seed, round);
  }
};

/// The partner's model is kept only if it scores strictly better; a non-finite score never
/// wins and any finite score beats a non-finite one.
struct KeepStrictlyBetter {
  bool higher_better = false;  ///< the metric's direction (see higher_is_better)

  bool operator()(double challenger, double incumbent) const {
    if (!std::isfinite(challenger)) return false;
    if (!std::isfinite(incumbent)) return true;
    return higher_better ? challenger > incumbent : challenger < incumbent;
  }
};

/// The partner's learning rate times exp(learning_rate_sigma N(0,1)), and every dropout rate
/// (a setting named "*.rate") times exp(dropout_sigma N(0,1)), capped at 0.9; sigma 0 keeps a
/// value as it came.
struct LogNormalJitter {
  double learning_rate_sigma = 0.0;
  double dropout_sigma = 0.0;

  template <class TrainerT>
  void operator()(TrainerT& trainer, double partner_learning_rate, const random_stream& draws) const {
    std::uint64_t draw = 0;
    double lr = partner_learning_rate;
    if (learning_rate_sigma > 0) lr *= std::exp(learning_rate_sigma * draws.normal(draw++));
    trainer.set_learning_rate(lr);
    if (dropout_sigma > 0)
      trainer.model().for_each_setting([&](const std::string& name, double& value) {
        if (is_dropout_rate(name)) value = std::min(0.9, value * std::exp(dropout_sigma * draws.normal(draw++)));
      });
  }

  /// Whether a run-time setting is a dropout rate (named "<layer>.rate").
  static bool is_dropout_rate(const std::string& setting) {
    return setting.size() > 5 && setting.compare(setting.size() - 5, 5, ".rate") == 0;
  }
};

}  // namespace strata
