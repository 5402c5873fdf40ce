#pragma once
// The small model the checkpoint targets restore into (and the seed generator writes): every
// kind of state a real model file or checkpoint holds (weights, BatchNorm buffers, a Dropout
// rate as a run-time setting, Adam's moments) at a size that keeps each fuzz run cheap.

#include <strata/strata.hpp>
#include <strata/train/trainer.hpp>

namespace strata_fuzz {

using tiny_net = strata::Sequential<strata::Dense<4>, strata::ReLU, strata::Dropout, strata::BatchNorm, strata::Dense<1>>;
using tiny_trainer = strata::Trainer<tiny_net, strata::MSE, strata::Adam>;

/// Input features of the tiny model.
inline constexpr strata::Index tiny_input_width = 3;
/// The "kind" entry of the tiny model's model files.
inline const char* const tiny_kind = "fuzz-mlp";

inline strata::Model<tiny_net> tiny_model() {
  strata::Model<tiny_net> model(tiny_net{strata::Dense<4>{}, strata::ReLU{}, strata::Dropout{0.25}, strata::BatchNorm{},
                                         strata::Dense<1>{}});
  model.build(tiny_input_width, 7);
  return model;
}

inline tiny_trainer make_tiny_trainer() {
  strata::trainer_options options;
  options.batch_size = 8;
  options.prefetch = false;  // no worker thread: nothing outlives one fuzz input
  return tiny_trainer(tiny_model(), strata::MSE{}, strata::Adam{}, strata::Serial{}, options);
}

}  // namespace strata_fuzz
