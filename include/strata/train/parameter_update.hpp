#pragma once
/// \file parameter_update.hpp
/// What follows each backward pass, and the optimizer state it keeps: the strategy's reduction
/// of the gradients, the parameters' current groups, clipping to a global norm, the optimizer's
/// step over the strategy's slices of the parameters, and the strategy's after-step and buffer
/// averaging. Also the optimizer's share of a checkpoint: its name and its state tensors
/// `optimizer/<parameter>.<state>`, whole tensors in the unsharded layout whatever the strategy
/// (so a checkpoint moves between rank counts and parallel strategies).

#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "../core/parameter_store.hpp"
#include "../core/random.hpp"
#include "../io/model_state.hpp"
#include "../optim/clip.hpp"
#include "trainer_options.hpp"

namespace strata {

/// The optimizer `Optimizer` (its hyperparameters) as it updates parameters on backend B.
template <class Optimizer, class B>
class parameter_update {
 public:
  using optimizer_state = typename Optimizer::template impl<B>;

  /// Checks the hyperparameters; `attach` then creates the optimizer's state.
  explicit parameter_update(Optimizer hyperparameters) : hyper_(hyperparameters) { hyper_.validate(); }

  /// What every rank must share about the update: the optimizer and its learning rate.
  std::uint64_t signature() const {
    return mix64(std::hash<std::string>{}(Optimizer::name) + 0x61ull) ^ detail::bits_signature(hyper_.lr, 0x93ull);
  }

  /// Cuts the parameters (already the same on every rank) into the strategy's optimizer slices
  /// and creates the optimizer's state over them.
  template <class Strategy>
  void attach(parameter_store<B>& parameters, Strategy& strategy) {
    slices_ = strategy.optimizer_slices(parameters);
    state_ = std::make_unique<optimizer_state>(hyper_, slices_);
  }

  const Optimizer& hyperparameters() const { return hyper_; }
  optimizer_state& state() { return *state_; }

  /// One update of `model` from the gradients of this rank's blocks: summed over the ranks,
  /// scaled by each parameter's group, clipped to `clip_norm` (0: never), stepped at `rate`.
  template <class ModelT, class Strategy>
  void apply(ModelT& model, Strategy& strategy, double rate, double clip_norm) {
    auto& parameters = model.parameters();
    strategy.reduce_gradients(parameters);
    refresh_groups(slices_, parameters);
    if (clip_norm > 0) scale_to_norm(slices_, clip_norm, std::sqrt(strategy.squared_gradient_norm(slices_, parameters)));
    state_->step(slices_, rate);
    strategy.after_step(parameters);
    strategy.average_buffers(model.buffers());
  }

  /// Adds the optimizer's name and state to `file`. Collective with a sharded or split
  /// optimizer (the state is gathered whole); only where `keep_tensors` is set does the file
  /// get the tensors.
  template <class Strategy>
  void write(state_file& file, parameter_store<B>& parameters, Strategy& strategy, bool keep_tensors) {
    file.meta["optimizer"] = Optimizer::name;
    write_optimizer_state<B>(file, tensors(parameters, strategy), keep_tensors);
  }

  /// Throws what `fail(text)` makes unless `file` holds this optimizer's state for these
  /// parameters, every tensor with its shape.
  template <class Strategy, class Fail>
  void check(const state_file& file, parameter_store<B>& parameters, Strategy& strategy, Fail& fail) {
    const auto it = file.meta.find("optimizer");
    if (it == file.meta.end()) throw fail("has no 'optimizer' entry: not a trainer checkpoint");
    if (it->second != Optimizer::name)
      throw fail("holds " + it->second + " optimizer state but this trainer uses " + Optimizer::name);
    check_optimizer_state<B>(file, tensors(parameters, strategy), fail);
  }

  /// Reads the state `check` accepted, and the optimizer's own step count (bias corrections).
  template <class Strategy>
  void read(const state_file& file, parameter_store<B>& parameters, Strategy& strategy, std::uint64_t steps) {
    read_optimizer_state<B>(file, tensors(parameters, strategy));
    state_->set_step_count(steps);
  }

 private:
  /// Lists the state tensors under their checkpoint keys, whole (collective with a sharded or
  /// split optimizer): f(key, matrix&) for each.
  template <class Strategy>
  auto tensors(parameter_store<B>& parameters, Strategy& strategy) {
    return [this, &parameters, &strategy](auto&& f) {
      strategy.for_each_optimizer_state(*state_, parameters,
                                        [&](const std::string& name, typename B::matrix& m) { f("optimizer/" + name, m); });
    };
  }

  Optimizer hyper_;
  std::vector<parameter_slice<B>> slices_;  ///< what the optimizer updates (the strategy's cut)
  std::unique_ptr<optimizer_state> state_;
};

}  // namespace strata
