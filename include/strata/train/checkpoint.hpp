#pragma once
/// \file checkpoint.hpp
/// Training checkpoints: one state file (io/state_file.hpp) holding the model's state in the
/// layout of io/model_state.hpp, the optimizer's state as tensors
/// `optimizer/<parameter>.<state>` (whole tensors in the unsharded layout, so a checkpoint moves
/// between rank counts and parallel strategies), and the loop position and learning rate as
/// metadata (Trainer::snapshot writes them, Trainer::restore checks and reads them).

#include "../io/model_state.hpp"
#include "../io/state_file.hpp"

namespace strata {

/// A training checkpoint is a state file; the name reads better where one is meant.
using checkpoint = state_file;

}  // namespace strata
