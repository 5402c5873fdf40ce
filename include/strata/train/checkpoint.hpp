#pragma once
/// \file checkpoint.hpp
/// Training checkpoints: one state file (io/state_file.hpp) holding the model's state in the
/// layout of io/model_state.hpp, the optimizer's state as tensors
/// `optimizer/<parameter>.<state>` (whole tensors in the unsharded layout, so a checkpoint moves
/// between rank counts and parallel strategies; train/parameter_update.hpp), and the loop
/// position and learning rate as metadata (train/loop_position.hpp). Trainer::snapshot writes
/// them, Trainer::restore checks and reads them.

#include <string>

#include "../core/error.hpp"
#include "../io/model_state.hpp"
#include "../io/state_file.hpp"
#include "loop_position.hpp"

namespace strata {

/// A training checkpoint is a state file; the name reads better where one is meant.
using checkpoint = state_file;

/// Throws config_error if `extras` (what a program adds to every checkpoint: a feature scaler, a
/// run description) use a name the checkpoint's own entries use, which would overwrite or be
/// overwritten by them: tensors under parameter/, buffer/ or optimizer/; metadata of the loop
/// position, the model state (input_width, state_version, setting/..., group/...), the optimizer
/// or a tournament (ltfb/...).
inline void require_extras_apart(const checkpoint& extras) {
  const auto starts = [](const std::string& name, const char* prefix) { return name.rfind(prefix, 0) == 0; };
  checkpoint own;
  loop_position{}.write(own);
  for (const char* key : {"optimizer", "input_width", "state_version"}) own.meta[key];
  for (const auto& entry : extras.meta)
    if (own.meta.count(entry.first) > 0 || starts(entry.first, "setting/") || starts(entry.first, "group/") ||
        starts(entry.first, "ltfb/"))
      throw config_error("checkpoint extras: metadata '" + entry.first + "' is the name of one of the trainer's own entries");
  for (const auto& t : extras.tensors)
    if (starts(t.name, "parameter/") || starts(t.name, "buffer/") || starts(t.name, "optimizer/"))
      throw config_error("checkpoint extras: tensor '" + t.name + "' uses a prefix the trainer's own tensors use");
}

}  // namespace strata
