#pragma once
/// \file loop_position.hpp
/// Where a training run stands, as a checkpoint records it beside the model and optimizer
/// state: epochs and steps done, the optimizer's step count, the learning rate in force and,
/// mid-epoch, the next batch and the running loss (so a resumed epoch replays the same
/// permutation and reports the same training loss as an uninterrupted one).

#include <cstdint>
#include <iomanip>
#include <limits>
#include <string>

#include "../core/error.hpp"
#include "../core/parse.hpp"
#include "../core/random.hpp"
#include "../io/state_file.hpp"

namespace strata {

struct loop_position {
  Index epoch = 0;                  ///< epochs completed
  std::uint64_t step = 0;           ///< optimizer steps taken by the loop
  std::uint64_t optimizer_steps = 0;  ///< the optimizer's own count (bias corrections)
  double learning_rate = 0.0;       ///< the rate in force
  Index batch_in_epoch = 0;         ///< next batch of an unfinished epoch (0: at an epoch's start)
  Index epoch_samples = 0;          ///< samples trained so far in that epoch
  double epoch_loss_sum = 0.0;      ///< their summed loss
  std::string batch_size, shuffle_seed;  ///< what the permutation of a mid-epoch position needs

  /// What ranks continuing one run must share: epochs and steps done.
  std::uint64_t signature() const { return mix64(static_cast<std::uint64_t>(epoch) + 0x33u) ^ mix64(step + 0x44u); }

  /// Writes the position's entries into `file`'s metadata.
  void write(state_file& file) const {
    file.meta["epoch"] = std::to_string(epoch);
    file.meta["step"] = std::to_string(step);
    file.meta["optimizer_steps"] = std::to_string(optimizer_steps);
    file.meta["learning_rate"] = detail::concat(std::setprecision(17), learning_rate);
    file.meta["batch_in_epoch"] = std::to_string(batch_in_epoch);
    file.meta["epoch_samples"] = std::to_string(epoch_samples);
    file.meta["epoch_loss_sum"] = detail::concat(std::setprecision(17), epoch_loss_sum);
    file.meta["batch_size"] = batch_size;
    file.meta["shuffle_seed"] = shuffle_seed;
  }

  /// Reads and checks a position: whole fields only ("12abc" is not 12), counts never negative
  /// (std::stoull would wrap "-1" around; a negative epoch or batch would index before the data)
  /// and finite reals, so a corrupt entry is reported here rather than derailing the next fit.
  /// `fail(text)` makes the exception (text such as "has no 'epoch' entry ...").
  template <class Fail>
  static loop_position read(const state_file& file, Fail&& fail) {
    const auto meta = [&](const char* key) {
      const auto it = file.meta.find(key);
      if (it == file.meta.end()) throw fail(detail::concat("has no '", key, "' entry: not a trainer checkpoint"));
      return it->second;
    };
    const auto optional = [&](const char* key, const char* otherwise) {
      const auto it = file.meta.find(key);
      return it == file.meta.end() ? std::string(otherwise) : it->second;
    };
    const auto malformed = [&](const char* key, const std::string& text) {
      return fail(detail::concat("has a malformed loop position ('", key, "' = '", text, "')"));
    };
    const auto count = [&](const char* key, const std::string& text, std::uint64_t limit) {
      std::uint64_t value = 0;
      if (!detail::parse_unsigned(text, limit, value)) throw malformed(key, text);
      return value;
    };
    const auto real = [&](const char* key, const std::string& text) {
      double value = 0.0;
      if (!detail::parse_finite(text, value)) throw malformed(key, text);
      return value;
    };
    constexpr auto index_limit = static_cast<std::uint64_t>(std::numeric_limits<Index>::max());
    constexpr auto step_limit = std::numeric_limits<std::uint64_t>::max();
    loop_position p;
    p.epoch = static_cast<Index>(count("epoch", meta("epoch"), index_limit));
    p.step = count("step", meta("step"), step_limit);
    p.optimizer_steps = count("optimizer_steps", meta("optimizer_steps"), step_limit);
    p.learning_rate = real("learning_rate", meta("learning_rate"));
    if (p.learning_rate < 0.0) throw malformed("learning_rate", meta("learning_rate"));
    p.batch_in_epoch = static_cast<Index>(count("batch_in_epoch", optional("batch_in_epoch", "0"), index_limit));
    p.epoch_samples = static_cast<Index>(count("epoch_samples", optional("epoch_samples", "0"), index_limit));
    p.epoch_loss_sum = real("epoch_loss_sum", optional("epoch_loss_sum", "0"));
    if (p.batch_in_epoch > 0) {
      p.batch_size = meta("batch_size");
      p.shuffle_seed = meta("shuffle_seed");
    }
    return p;
  }

  /// Throws unless a run with `batch_size` and `seed` can continue from here: inside an epoch the
  /// same permutation is replayed only with the batch size and seed that made it.
  template <class Fail>
  void check_resumable(Index size, std::uint64_t seed, Fail&& fail) const {
    if (batch_in_epoch == 0) return;
    if (batch_size != std::to_string(size))
      throw fail("was written mid-epoch with batch size " + batch_size + "; resume it with that batch size, not " +
                 std::to_string(size));
    if (shuffle_seed != std::to_string(seed))
      throw fail("was written mid-epoch with seed " + shuffle_seed + "; resume it with that seed, not " + std::to_string(seed));
  }
};

}  // namespace strata
