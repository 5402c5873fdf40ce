#pragma once
/// \file trainer_options.hpp
/// The training loop's settings, and the part of the signature every rank must share that they
/// contribute (strategies compare signatures at start-up and fail together on a mismatch).

#include <cstdint>
#include <limits>
#include <string>

#include "../core/config.hpp"
#include "../core/error.hpp"
#include "../core/random.hpp"

namespace strata {

/// Settings of the training loop that are not hyperparameters of the model or optimizer.
struct trainer_options {
  Index batch_size = 256;         ///< global minibatch size
  Index eval_batch_size = 1024;   ///< samples per forward pass in evaluation (memory grows with it)
  std::uint64_t seed = 0;         ///< shuffling seed (per-epoch permutations)
  bool shuffle = true;            ///< reshuffle the training samples every epoch
  bool check_finite = true;       ///< stop with the layer named on the first NaN/infinity
  double clip_norm = 0.0;         ///< clip gradients to this global norm; 0 disables
  /// Ramp the learning rate linearly over the first this many steps (Goyal et al., 2017): Adam's
  /// first steps move every weight by about the full rate, which can throw a wide network far
  /// off before its moment estimates settle. 0 disables.
  std::uint64_t warmup_steps = 0;
  bool prefetch = true;           ///< gather the next minibatch on a worker thread during compute
  std::string checkpoint_path;    ///< where `fit` writes checkpoints; empty: none
  std::uint64_t checkpoint_every = 0;  ///< also checkpoint every this many steps; 0: epoch ends only

  /// What every rank must agree on among these settings: the batch size (it decides each rank's
  /// share) and the shuffling seed (it decides the order of the samples).
  std::uint64_t signature() const { return mix64(static_cast<std::uint64_t>(batch_size)) ^ mix64(seed + 0x51ull); }

  /// Throws config_error unless the batch sizes are positive and the clipping norm is 0 (off) or
  /// positive and finite (a negative or NaN norm would silently turn clipping off).
  void validate() const {
    if (batch_size <= 0) throw config_error(detail::concat("Trainer: batch size must be positive, got ", batch_size));
    if (eval_batch_size <= 0)
      throw config_error(detail::concat("Trainer: evaluation batch size must be positive, got ", eval_batch_size));
    if (!(clip_norm >= 0.0 && clip_norm < std::numeric_limits<double>::infinity()))
      throw config_error(detail::concat("Trainer: clip_norm must be 0 (off) or a positive, finite norm, got ", clip_norm));
  }

  /// The share of the learning rate in force at optimizer step `step` (0-based): the warm-up ramp.
  double warmup_factor(std::uint64_t step) const {
    return warmup_steps > step ? static_cast<double>(step + 1) / static_cast<double>(warmup_steps) : 1.0;
  }
};

}  // namespace strata
