#pragma once
/// \file callback.hpp
/// Hooks into the training loop. The trainer calls every callback at the same points on every
/// rank with the same (globally reduced) figures, so decisions such as early stopping agree
/// across ranks; callbacks that print or write files act only where `info.is_root` is set.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "../core/config.hpp"

namespace strata {

/// What a training run is, given to callbacks when it starts.
struct train_info {
  Index epochs = 0;             ///< epochs this call to fit will run (first_epoch .. epochs-1)
  Index first_epoch = 0;        ///< > 0 when resuming
  Index samples_per_epoch = 0;  ///< global training samples per epoch
  Index batch_size = 0;         ///< global minibatch size
  bool is_root = true;          ///< whether this process should print and write files
};

/// Progress within an epoch, after each minibatch.
struct batch_progress {
  Index epoch = 0, epochs = 0;
  Index samples_done = 0, samples_total = 0;  ///< within this epoch, global
  double mean_loss = 0.0;                      ///< mean training loss so far in this epoch
  double elapsed_seconds = 0.0;                ///< since the epoch started
  std::uint64_t step = 0;                      ///< optimizer steps taken so far in total
};

/// What an epoch achieved.
struct epoch_record {
  Index epoch = 0;
  double train_loss = 0.0;
  double learning_rate = 0.0;
  double seconds = 0.0;
  double samples_per_second = 0.0;
  /// Validation figures by name ("loss", "mse", "mae", "rmse", "r2", "pearson", "spearman");
  /// empty without a validation set.
  std::map<std::string, double> validation;
};

/// Settings a callback may change between epochs.
struct training_control {
  double learning_rate = 0.0;  ///< the learning rate for the next epoch
  bool stop = false;           ///< end training after this epoch
};

/// Base class of training callbacks; every hook does nothing by default.
class callback {
 public:
  virtual ~callback() = default;
  virtual void on_train_begin(const train_info&) {}
  /// Before each epoch: schedules set `control.learning_rate` here.
  virtual void on_epoch_begin(Index /*epoch*/, training_control&) {}
  virtual void on_batch_end(const batch_progress&) {}
  /// After each epoch (and its validation): early stopping sets `control.stop` here.
  virtual void on_epoch_end(const epoch_record&, training_control&) {}
  virtual void on_train_end() {}
};

/// A training run's callbacks, called in the order added. The epoch hooks hand them the rate
/// in force and keep the rate they leave; a stop any of them asks for holds until the run ends.
class callback_list {
 public:
  void add(std::shared_ptr<callback> cb) { list_.push_back(std::move(cb)); }

  void train_begin(const train_info& info) {
    control_ = {};
    for (auto& cb : list_) cb->on_train_begin(info);
  }
  void epoch_begin(Index epoch, double& learning_rate) {
    control_.learning_rate = learning_rate;
    for (auto& cb : list_) cb->on_epoch_begin(epoch, control_);
    learning_rate = control_.learning_rate;
  }
  void batch_end(const batch_progress& progress) {
    for (auto& cb : list_) cb->on_batch_end(progress);
  }
  void epoch_end(const epoch_record& record, double& learning_rate) {
    control_.learning_rate = learning_rate;
    for (auto& cb : list_) cb->on_epoch_end(record, control_);
    learning_rate = control_.learning_rate;
  }
  void train_end() {
    for (auto& cb : list_) cb->on_train_end();
  }
  /// Whether a callback asked to end training after this epoch.
  bool stop_requested() const { return control_.stop; }

 private:
  std::vector<std::shared_ptr<callback>> list_;
  training_control control_;
};

}  // namespace strata
