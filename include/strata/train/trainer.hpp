#pragma once
/// \file trainer.hpp
/// `Trainer<Spec, Loss, Optimizer, Strategy, Backend>`: the one training loop. Everything that
/// varies is a policy: the architecture, the loss, the optimizer, how work is spread across
/// processes (Serial, data-, model- or tournament-parallel) and where the math runs.
///
/// Per minibatch: gather the samples (host), stage them on the backend, forward, loss and its
/// gradient, backward, `strategy.reduce_gradients`, parameter groups and optional clipping,
/// the optimizer step over the strategy's slices, `strategy.after_step`,
/// `strategy.average_buffers` and the batch loss summed over ranks (docs/design.md §4.1).
/// Buffers are allocated once and reused. The loss gradient is normalised by the *global* batch, so summing gradients over
/// ranks gives exactly the serial gradient.

#include <chrono>
#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <typeinfo>
#include <vector>

#include "../backend/eigen_backend.hpp"
#include "../core/random.hpp"
#include "../data/loader.hpp"
#include "../graph/model.hpp"
#include "../loss/mse.hpp"
#include "../optim/adam.hpp"
#include "../optim/clip.hpp"
#include "../parallel/serial.hpp"
#include "batch_stage.hpp"
#include "callback.hpp"
#include "trainer_options.hpp"
#include "../core/parse.hpp"
#include "checkpoint.hpp"
#include "evaluator.hpp"
#include "loop_position.hpp"

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
      : model_(std::move(model)), loss_(loss), hyper_(optimizer), strategy_(std::move(strategy)),
        options_(options) {
    if (!model_.built()) throw config_error("Trainer: build the model (model.build(width, seed)) before training it");
    if (options_.batch_size <= 0) throw config_error(detail::concat("Trainer: batch size must be positive, got ", options_.batch_size));
    if (options_.eval_batch_size <= 0)
      throw config_error(detail::concat("Trainer: evaluation batch size must be positive, got ", options_.eval_batch_size));
    hyper_.validate();
    // Settings every rank must share for the ranks' work to add up to one training run. The
    // architecture's type covers what parameter shapes do not (activations, dropout layers).
    const std::uint64_t settings = options_.signature() ^ mix64(model_.seed() + 0x7Full) ^
                                   mix64(std::hash<std::string>{}(typeid(Spec).name())) ^
                                   mix64(std::hash<std::string>{}(Optimizer::name) + 0x61ull) ^ detail::bits_signature(hyper_.lr, 0x93ull);
    strategy_.synchronize(model_.parameters(), model_.buffers(), settings);
    slices_ = strategy_.optimizer_slices(model_.parameters());
    optimizer_ = std::make_unique<optimizer_state>(hyper_, slices_);
    learning_rate_ = hyper_.lr;
  }

  model_type& model() { return model_; }
  Strategy& strategy() { return strategy_; }
  optimizer_state& optimizer() { return *optimizer_; }
  const trainer_options& options() const { return options_; }
  double learning_rate() const { return learning_rate_; }
  void set_learning_rate(double lr) { learning_rate_ = lr; }
  /// Epochs completed so far (the next fit continues from here).
  Index epoch() const { return epoch_; }
  /// Optimizer steps taken so far.
  std::uint64_t step() const { return step_; }
  /// Restores the loop position (used when resuming from a checkpoint) to the start of `epoch`.
  void set_position(Index epoch, std::uint64_t step) {
    epoch_ = epoch;
    step_ = step;
    partial_ = {};
  }

  /// Tensors and metadata written into every checkpoint besides the trainer's own (a feature
  /// scaler, a data description): keys must not start with parameter/, buffer/ or optimizer/.
  /// `load` returns the whole file, so the caller reads them back from there.
  void set_checkpoint_extras(checkpoint extras) { extras_ = std::move(extras); }

  /// Writes weights, buffers, optimizer state and the loop position to `path`. Every rank must
  /// call it (a sharded optimizer state is gathered); only the root rank writes.
  void save(const std::string& path) {
    const checkpoint file = snapshot();
    if (strategy_.is_root()) file.write(path);
  }

  /// What `save` writes, in memory. Collective; only the root rank's copy holds the tensors.
  checkpoint snapshot() {
    checkpoint file;
    file.meta["optimizer"] = Optimizer::name;
    loop_position{epoch_,
                  step_,
                  optimizer_->step_count(),
                  learning_rate_,
                  partial_.batch,
                  partial_.samples,
                  partial_.loss_sum,
                  std::to_string(options_.batch_size),
                  std::to_string(options_.seed)}
        .write(file);
    for (const auto& [key, value] : extras_.meta) file.meta.emplace(key, value);
    file.tensors = extras_.tensors;
    // The model's weights, buffers, settings (dropout rates a tournament may have perturbed) and
    // groups; split tensors gathered whole. Only the root keeps the tensors.
    write_model_state(file, model_, strategy_, strategy_.is_root());
    write_optimizer_state<B>(file, optimizer_tensors(), strategy_.is_root());
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
    const auto meta = [&](const char* key) {
      const auto it = file.meta.find(key);
      if (it == file.meta.end()) throw fail(detail::concat("has no '", key, "' entry: not a trainer checkpoint"));
      return it->second;
    };
    if (meta("optimizer") != Optimizer::name)
      throw fail("holds " + meta("optimizer") + " optimizer state but this trainer uses " + Optimizer::name);
    checked_model_state<model_type> state(file, model_, fail);
    check_optimizer_state<B>(file, optimizer_tensors(), fail);
    const loop_position at = loop_position::read(file, fail);
    if (position) at.check_resumable(options_.batch_size, options_.seed, fail);
    // A resume continues the same run, frozen layers included; a warm start or a tournament
    // exchange keeps this trainer's groups.
    state.apply(position, strategy_);
    read_optimizer_state<B>(file, optimizer_tensors());
    optimizer_->set_step_count(at.optimizer_steps);
    if (!position) return;
    set_position(at.epoch, at.step);
    partial_ = {at.batch_in_epoch, at.epoch_samples, at.epoch_loss_sum};
    learning_rate_ = at.learning_rate;
  }

  /// Adds a callback; it is called in the order added.
  void add_callback(std::shared_ptr<callback> cb) { callbacks_.push_back(std::move(cb)); }

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
                        mix64(static_cast<std::uint64_t>(epochs) + 0x22u) ^ mix64(static_cast<std::uint64_t>(epoch_) + 0x33u) ^
                        mix64(step_ + 0x44u) ^ mix64(options_.checkpoint_every + 0x55u) ^ groups_signature(),
                    "has different data sizes, epochs, checkpointing, loop position (a different checkpoint?) or "
                    "parameter groups");
    train_info info{epochs, epoch_, train.size(), options_.batch_size, strategy_.is_root()};
    for (auto& cb : callbacks_) cb->on_train_begin(info);
    std::vector<epoch_record> history;
    training_control control;
    BatchLoader<Dataset> loader(train, loader_options{options_.batch_size, options_.shuffle, options_.seed, options_.prefetch},
                                [this](Index global) { return strategy_.local_range(global); });
    while (epoch_ < epochs) {
      control.learning_rate = learning_rate_;
      for (auto& cb : callbacks_) cb->on_epoch_begin(epoch_, control);
      learning_rate_ = control.learning_rate;

      epoch_record record = train_epoch(loader, train.size(), epochs);
      if (validation != nullptr) {
        const evaluation e = evaluate(*validation);
        record.validation = e.metrics;
        record.validation["loss"] = e.loss;
      }
      // The rate may have changed during the epoch (a tournament adopting a model takes its
      // rate): epoch-end callbacks start from the rate in force, not the epoch's first.
      control.learning_rate = learning_rate_;
      for (auto& cb : callbacks_) cb->on_epoch_end(record, control);
      learning_rate_ = control.learning_rate;
      history.push_back(record);
      ++epoch_;
      if (!options_.checkpoint_path.empty()) save(options_.checkpoint_path);
      if (control.stop) break;
    }
    for (auto& cb : callbacks_) cb->on_train_end();
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
  /// A hash of every parameter's group: ranks must train the same tensors at the same rates.
  std::uint64_t groups_signature() {
    std::uint64_t h = 0x6A09E667F3BCC908ull;
    for (const auto& p : model_.parameters())
      h = mix64(h ^ detail::bits_signature(p.group.lr_scale, 0)) ^ mix64(h + (p.group.weight_decay ? 1u : 2u));
    return h;
  }

  /// Lists the optimizer's state tensors under their checkpoint keys
  /// ("optimizer/<parameter>.<state>"), whole tensors in the unsharded layout (collective with a
  /// sharded or split optimizer): f(key, matrix&) for each.
  auto optimizer_tensors() {
    return [this](auto&& f) {
      strategy_.for_each_optimizer_state(*optimizer_, model_.parameters(),
                                         [&](const std::string& name, matrix& m) { f("optimizer/" + name, m); });
    };
  }

  template <class Dataset>
  epoch_record train_epoch(BatchLoader<Dataset>& loader, Index n, Index epochs) {
    const auto start = std::chrono::steady_clock::now();
    // The model may hold the loader's batch as its last input, which dies with the loader: forget
    // it however the epoch ends (normally or by an exception).
    struct release_on_exit {
      model_type& model;
      ~release_on_exit() { model.release_input(); }
    } release{model_};
    const Index resumed_samples = partial_.samples;
    loader.start_epoch(static_cast<std::uint64_t>(epoch_), partial_.batch);
    while (const minibatch<T>* batch = loader.next()) {
      const double normalizer = static_cast<double>(batch->global * model_.output_width());
      double local_loss = 0.0;
      const auto blocks = strategy_.local_blocks(batch->global);
      for (const auto& [begin, columns] : blocks) {
        // One forward/backward per block: the whole local batch, or (deterministic data
        // parallelism) fixed sample blocks whose gradients the strategy adds in a fixed order.
        if (columns == 0) {  // a batch with fewer samples than blocks: this block contributes zero
          model_.parameters().zero_gradients();
          strategy_.block_done(model_.parameters());
          continue;
        }
        const auto [x, y] = stage_.stage(batch->x, batch->y, begin, columns, blocks.size() == 1);
        pass_info pass;
        pass.phase = mode::train;
        pass.step = step_;
        pass.first_sample = static_cast<std::uint64_t>(batch->first + batch->offset + begin);
        pass.check_finite = options_.check_finite;
        pass.gradients = strategy_.listener();
        const matrix& prediction = model_.forward(*x, pass);
        local_loss += loss_.template evaluate<B>(prediction, *y, loss_grad_, normalizer);
        model_.backward(loss_grad_);
        strategy_.block_done(model_.parameters());
      }
      strategy_.reduce_gradients(model_.parameters());
      refresh_groups(slices_, model_.parameters());
      if (options_.clip_norm > 0)
        scale_to_norm(slices_, options_.clip_norm, std::sqrt(strategy_.squared_gradient_norm(slices_, model_.parameters())));
      const double ramp = options_.warmup_steps > step_
                              ? static_cast<double>(step_ + 1) / static_cast<double>(options_.warmup_steps)
                              : 1.0;
      optimizer_->step(slices_, learning_rate_ * ramp);
      strategy_.after_step(model_.parameters());
      strategy_.average_buffers(model_.buffers());
      ++step_;

      const double batch_loss = strategy_.sum(local_loss) / normalizer;
      if (options_.check_finite && !std::isfinite(batch_loss))
        throw numeric_error(detail::concat("training loss became ", batch_loss, " at epoch ", epoch_, ", step ", step_,
                                           " (learning rate ", learning_rate_, ")"));
      partial_.loss_sum += batch_loss * static_cast<double>(batch->global);
      partial_.samples += batch->global;
      partial_.batch = batch->index + 1;
      batch_progress progress{epoch_, epochs, partial_.samples, n, partial_.loss_sum / static_cast<double>(partial_.samples),
                              seconds_since(start), step_};
      for (auto& cb : callbacks_) cb->on_batch_end(progress);
      if (options_.checkpoint_every > 0 && step_ % options_.checkpoint_every == 0 && !options_.checkpoint_path.empty() &&
          partial_.batch < loader.batches())
        save(options_.checkpoint_path);
    }
    epoch_record record;
    record.epoch = epoch_;
    record.train_loss = partial_.samples > 0 ? partial_.loss_sum / static_cast<double>(partial_.samples) : NAN;
    record.learning_rate = learning_rate_;
    record.seconds = seconds_since(start);
    record.samples_per_second = record.seconds > 0 ? static_cast<double>(n - resumed_samples) / record.seconds : 0.0;
    partial_ = {};
    return record;
  }

  static double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }

  model_type model_;
  Loss loss_;
  Optimizer hyper_;
  Strategy strategy_;
  trainer_options options_;
  std::vector<parameter_slice<B>> slices_;  ///< what the optimizer updates (the strategy's cut)
  std::unique_ptr<optimizer_state> optimizer_;
  std::vector<std::shared_ptr<callback>> callbacks_;
  double learning_rate_ = 0.0;
  Index epoch_ = 0;
  std::uint64_t step_ = 0;
  /// Progress through the current epoch (non-zero only between batches of an unfinished epoch).
  struct partial_epoch {
    Index batch = 0;        ///< next batch to train
    Index samples = 0;      ///< samples trained so far in this epoch
    double loss_sum = 0.0;  ///< their summed loss
  };
  partial_epoch partial_;
  checkpoint extras_;
  batch_stage<B> stage_;
  evaluator<B> evaluator_;
  matrix loss_grad_;
};

/// Class template argument deduction from the model and the policies given:
/// `Trainer trainer(std::move(model), MSE{}, Adam{1e-3}, strategy);`
template <class Spec, class B>
Trainer(Model<Spec, B>) -> Trainer<Spec, MSE, Adam, Serial, B>;
template <class Spec, class B, class Loss>
Trainer(Model<Spec, B>, Loss) -> Trainer<Spec, Loss, Adam, Serial, B>;
template <class Spec, class B, class Loss, class Optimizer>
Trainer(Model<Spec, B>, Loss, Optimizer) -> Trainer<Spec, Loss, Optimizer, Serial, B>;
template <class Spec, class B, class Loss, class Optimizer, class Strategy>
Trainer(Model<Spec, B>, Loss, Optimizer, Strategy) -> Trainer<Spec, Loss, Optimizer, Strategy, B>;
template <class Spec, class B, class Loss, class Optimizer, class Strategy>
Trainer(Model<Spec, B>, Loss, Optimizer, Strategy, trainer_options) -> Trainer<Spec, Loss, Optimizer, Strategy, B>;

}  // namespace strata
