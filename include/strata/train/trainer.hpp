#pragma once
/// \file trainer.hpp
/// `Trainer<Spec, Loss, Optimizer, Strategy, Backend>`: the one training loop. Everything that
/// varies is a policy: the architecture, the loss, the optimizer, how work is spread across
/// processes (Serial, data-, model- or tournament-parallel) and where the math runs.
///
/// Per minibatch: gather the samples (host), stage them on the backend (batch_stage.hpp),
/// forward, loss and its gradient, backward, the update (parameter_update.hpp) and the batch
/// loss summed over ranks (docs/design.md §4.1). Buffers are allocated once and reused. The loss
/// gradient is normalised by the *global* batch, so summing gradients over ranks gives exactly
/// the serial gradient.

#include <chrono>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "../backend/eigen_backend.hpp"
#include "../core/random.hpp"
#include "../data/loader.hpp"
#include "../graph/model.hpp"
#include "../loss/mse.hpp"
#include "../optim/adam.hpp"
#include "../parallel/serial.hpp"
#include "batch_stage.hpp"
#include "callback.hpp"
#include "checkpoint.hpp"
#include "evaluator.hpp"
#include "loop_position.hpp"
#include "parameter_update.hpp"
#include "trainer_options.hpp"

namespace strata {

template <class Spec, class Loss = MSE, class Optimizer = Adam, class Strategy = Serial,
          class B = EigenBackend<float>>
class Trainer {
 public:
  using model_type = Model<Spec, B>;
  using matrix = typename B::matrix;
  using T = typename B::scalar;
  using optimizer_state = typename Optimizer::template impl<B>;

  /// Takes a built model. The strategy makes every rank start from the same weights.
  Trainer(model_type model, Loss loss = {}, Optimizer optimizer = {}, Strategy strategy = {},
          trainer_options options = {})
      : model_(std::move(model)), loss_(loss), update_(optimizer), strategy_(std::move(strategy)), options_(options) {
    if (!model_.built()) throw config_error("Trainer: build the model (model.build(width, seed)) before training it");
    options_.validate();
    // Ranks that share these train one model together; the strategy fails on every rank if not.
    strategy_.synchronize(model_.parameters(), model_.buffers(),
                          options_.signature() ^ model_.signature() ^ update_.signature());
    update_.attach(model_.parameters(), strategy_);
    position_.learning_rate = optimizer.lr;
  }

  model_type& model() { return model_; }
  Strategy& strategy() { return strategy_; }
  optimizer_state& optimizer() { return update_.state(); }
  const trainer_options& options() const { return options_; }
  double learning_rate() const { return position_.learning_rate; }
  void set_learning_rate(double lr) { position_.learning_rate = lr; }
  /// Epochs completed so far (the next fit continues from here).
  Index epoch() const { return position_.epoch; }
  /// Optimizer steps taken so far.
  std::uint64_t step() const { return position_.step; }
  /// Moves the loop to the start of `epoch`, `step` optimizer steps done.
  void set_position(Index epoch, std::uint64_t step) {
    const double rate = position_.learning_rate;
    position_ = {};
    position_.epoch = epoch;
    position_.step = step;
    position_.learning_rate = rate;
  }

  /// Tensors and metadata written into every checkpoint besides the trainer's own (a feature
  /// scaler, a data description); a name the trainer's own entries use is refused
  /// (`require_extras_apart`). `load` returns the whole file, so the caller reads them back.
  void set_checkpoint_extras(checkpoint extras) {
    require_extras_apart(extras);
    extras_ = std::move(extras);
  }

  /// Writes weights, buffers, optimizer state and the loop position to `path`. Every rank must
  /// call it (a sharded optimizer state is gathered); only the root rank writes.
  void save(const std::string& path) {
    const checkpoint file = snapshot();
    if (strategy_.is_root()) file.write(path);
  }

  /// What `save` writes, in memory (checkpoint.hpp): the extras, the loop position, the model's
  /// state (split tensors gathered whole) and the optimizer's. Collective; only the root rank's
  /// copy holds the tensors.
  checkpoint snapshot() {
    checkpoint file = extras_;
    loop_position at = position_;
    at.optimizer_steps = update_.state().step_count();
    at.batch_size = std::to_string(options_.batch_size);
    at.shuffle_seed = std::to_string(options_.seed);
    at.write(file);
    write_model_state(file, model_, strategy_, strategy_.is_root());
    update_.write(file, model_.parameters(), strategy_, strategy_.is_root());
    return file;
  }

  /// Restores everything `save` wrote. The file is checked completely first (integrity, the
  /// optimizer, every tensor's presence and shape): on any mismatch it throws io_error naming
  /// the first difference and leaves the trainer untouched.
  checkpoint load(const std::string& path) {
    checkpoint file = checkpoint::read(path);
    restore(file, "checkpoint '" + path + "'", true);
    return file;
  }

  /// Restores the model and optimizer state from a snapshot (`source` names it in errors), and
  /// the loop position too when `position` is set. Checks everything first, as `load`.
  void restore(const checkpoint& file, const std::string& source, bool position) {
    const auto fail = [&](const std::string& what) { return io_error(source + " " + what); };
    checked_model_state<model_type> state(file, model_, fail);
    update_.check(file, model_.parameters(), strategy_, fail);
    const loop_position at = loop_position::read(file, fail);
    if (position) at.check_resumable(options_.batch_size, options_.seed, fail);
    // A resume continues the same run, frozen layers included; a warm start or a tournament
    // exchange keeps this trainer's groups.
    state.apply(position, strategy_);
    update_.read(file, model_.parameters(), strategy_, at.optimizer_steps);
    if (position) position_ = at;
  }

  /// Adds a callback; it is called in the order added.
  void add_callback(std::shared_ptr<callback> cb) { callbacks_.add(std::move(cb)); }

  /// Trains until `epochs` epochs are complete in total (continuing from `epoch()`), evaluating
  /// on `validation` after each epoch when given. Returns one record per epoch run.
  template <class Dataset>
  std::vector<epoch_record> fit(const Dataset& train, Index epochs, const Dataset* validation = nullptr) {
    if (train.input_width() != model_.input_width())
      throw shape_error(detail::concat("Trainer::fit: the model expects ", model_.input_width(),
                                       " input features, the training data has ", train.input_width()));
    if (train.target_width() != model_.output_width())
      throw shape_error(detail::concat("Trainer::fit: the model has ", model_.output_width(),
                                       " outputs, the training data has ", train.target_width(), " targets"));
    if (train.size() == 0) throw data_error("Trainer::fit: the training set is empty");
    // Ranks that disagree on these would issue different numbers of collectives: fail, not hang.
    strategy_.agree(mix64(static_cast<std::uint64_t>(train.size())) ^
                        mix64(static_cast<std::uint64_t>(validation != nullptr ? validation->size() + 1 : 0) + 0x11u) ^
                        mix64(static_cast<std::uint64_t>(epochs) + 0x22u) ^ position_.signature() ^
                        mix64(options_.checkpoint_every + 0x55u) ^ model_.parameters().groups_signature(),
                    "has different data sizes, epochs, checkpointing, loop position (a different checkpoint?) or "
                    "parameter groups");
    callbacks_.train_begin({epochs, position_.epoch, train.size(), options_.batch_size, strategy_.is_root()});
    std::vector<epoch_record> history;
    BatchLoader<Dataset> loader(train, loader_options{options_.batch_size, options_.shuffle, options_.seed, options_.prefetch},
                                [this](Index global) { return strategy_.local_range(global); });
    while (position_.epoch < epochs) {
      callbacks_.epoch_begin(position_.epoch, position_.learning_rate);
      epoch_record record = train_epoch(loader, train.size(), epochs);
      if (validation != nullptr) {
        const evaluation e = evaluate(*validation);
        record.validation = e.metrics;
        record.validation["loss"] = e.loss;
      }
      // The rate may have changed during the epoch (a tournament adopting a model takes its
      // rate): epoch-end callbacks start from the rate in force, not the epoch's first.
      callbacks_.epoch_end(record, position_.learning_rate);
      history.push_back(record);
      ++position_.epoch;
      if (!options_.checkpoint_path.empty()) save(options_.checkpoint_path);
      if (callbacks_.stop_requested()) break;
    }
    callbacks_.train_end();
    return history;
  }

  /// Evaluation-mode predictions for every sample of `data`, `outputs x samples`.
  template <class Dataset>
  host_matrix<T> predict(const Dataset& data) {
    host_matrix<T> predictions, targets;
    evaluator_.predict(model_, strategy_, stage_, data, options_.eval_batch_size, options_.check_finite, predictions, targets);
    return predictions;
  }

  /// Loss and metrics of the model on `data` (evaluation mode), computed over all samples.
  /// `check_finite` false lets a model with non-finite outputs be scored (the metrics come out
  /// NaN) instead of stopping, as a tournament needs.
  template <class Dataset>
  evaluation evaluate(const Dataset& data) {
    return evaluate(data, options_.check_finite);
  }
  template <class Dataset>
  evaluation evaluate(const Dataset& data, bool check_finite) {
    return evaluator_.evaluate(model_, loss_, strategy_, stage_, data, options_.eval_batch_size, check_finite);
  }

 private:
  /// One epoch (or the rest of one, after a mid-epoch resume) of `n` samples.
  template <class Dataset>
  epoch_record train_epoch(BatchLoader<Dataset>& loader, Index n, Index epochs) {
    const auto start = std::chrono::steady_clock::now();
    const auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
    // The model may hold the loader's batch as its last input, which dies with the loader: forget
    // it however the epoch ends (normally or by an exception).
    struct release_on_exit {
      model_type& model;
      ~release_on_exit() { model.release_input(); }
    } release{model_};
    loop_position& at = position_;
    const Index resumed_samples = at.epoch_samples;
    loader.start_epoch(static_cast<std::uint64_t>(at.epoch), at.batch_in_epoch);
    while (const minibatch<T>* batch = loader.next()) {
      const double normalizer = static_cast<double>(batch->global * model_.output_width());
      const double local_loss = backpropagate(*batch, normalizer);
      update_.apply(model_, strategy_, at.learning_rate * options_.warmup_factor(at.step), options_.clip_norm);
      ++at.step;

      const double batch_loss = strategy_.sum(local_loss) / normalizer;
      if (options_.check_finite && !std::isfinite(batch_loss))
        throw numeric_error(detail::concat("training loss became ", batch_loss, " at epoch ", at.epoch, ", step ", at.step,
                                           " (learning rate ", at.learning_rate, ")"));
      at.epoch_loss_sum += batch_loss * static_cast<double>(batch->global);
      at.epoch_samples += batch->global;
      at.batch_in_epoch = batch->index + 1;
      callbacks_.batch_end({at.epoch, epochs, at.epoch_samples, n, at.epoch_loss_sum / static_cast<double>(at.epoch_samples),
                            seconds(), at.step});
      if (options_.checkpoint_every > 0 && at.step % options_.checkpoint_every == 0 && !options_.checkpoint_path.empty() &&
          at.batch_in_epoch < loader.batches())
        save(options_.checkpoint_path);
    }
    const double took = seconds();
    epoch_record record{at.epoch, at.epoch_samples > 0 ? at.epoch_loss_sum / static_cast<double>(at.epoch_samples) : NAN,
                        at.learning_rate, took, took > 0 ? static_cast<double>(n - resumed_samples) / took : 0.0, {}};
    at.batch_in_epoch = at.epoch_samples = 0;
    at.epoch_loss_sum = 0.0;
    return record;
  }

  /// Forward and backward over the strategy's blocks of `batch`: the whole local batch, or
  /// (deterministic data parallelism) fixed sample blocks whose gradients the strategy adds in a
  /// fixed order. Returns this rank's summed loss.
  double backpropagate(const minibatch<T>& batch, double normalizer) {
    double loss = 0.0;
    const auto blocks = strategy_.local_blocks(batch.global);
    for (const auto& [begin, columns] : blocks) {
      if (columns == 0) {  // a batch with fewer samples than blocks: this block contributes zero
        model_.parameters().zero_gradients();
      } else {
        const auto [x, y] = stage_.stage(batch.x, batch.y, begin, columns, blocks.size() == 1);
        pass_info pass;
        pass.phase = mode::train;
        pass.step = position_.step;
        pass.first_sample = static_cast<std::uint64_t>(batch.first + batch.offset + begin);
        pass.check_finite = options_.check_finite;
        pass.gradients = strategy_.listener();
        loss += loss_.template evaluate<B>(model_.forward(*x, pass), *y, loss_grad_, normalizer);
        model_.backward(loss_grad_);
      }
      strategy_.block_done(model_.parameters());
    }
    return loss;
  }

  model_type model_;
  Loss loss_;
  parameter_update<Optimizer, B> update_;
  Strategy strategy_;
  trainer_options options_;
  callback_list callbacks_;
  /// Where the run stands; mid-epoch fields are non-zero only between batches of an unfinished
  /// epoch (the optimizer's count, batch size and seed are filled in by `snapshot`).
  loop_position position_;
  checkpoint extras_;
  batch_stage<B> stage_;
  evaluator<B> evaluator_;
  matrix loss_grad_;
};

/// Class template argument deduction from the model and the policies given, the rest defaulted:
/// `Trainer trainer(std::move(model), MSE{}, Adam{1e-3}, strategy);`
template <class Spec, class B, class Loss = MSE, class Optimizer = Adam, class Strategy = Serial>
Trainer(Model<Spec, B>, Loss = {}, Optimizer = {}, Strategy = {}, trainer_options = {})
    -> Trainer<Spec, Loss, Optimizer, Strategy, B>;

}  // namespace strata
