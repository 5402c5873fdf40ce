#pragma once
/// \file refinement.hpp
/// Training to the best validation epoch, and refining a warm-started model (transfer learning):
///   * `BestModel`: remembers the model of the best validation epoch, so a run that early
///     stopping ends can hand back that model rather than the last one;
///   * `GradualUnfreezing`: layers frozen when training starts and thawed at given epochs, as
///     LBANN's freezer callback does (the head adapts first, the encoders later);
///   * `fit_to_best`: one call that trains with both and early stopping (optionally lowering the
///     rate on plateaus) and restores the best epoch's model: how every member of a transfer
///     study (workflows/ensemble_transfer.hpp) and every learning-curve network trains.
/// A refinement is `fit_to_best` on a warm-started model (io/warm_start.hpp), at a lower rate.

#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../core/parameter.hpp"
#include "../io/model_state.hpp"
#include "callbacks.hpp"

namespace strata {

/// Remembers `model`'s state at its best validation epoch (by `watched`); `restore` puts it
/// back. Works for models whose tensors this process holds whole (serial, data-parallel).
template <class ModelT>
class BestModel : public callback {
 public:
  explicit BestModel(ModelT& model, std::string watched = "loss", bool higher_is_better = false)
      : model_(model), watched_(std::move(watched)), higher_(higher_is_better) {}

  void on_epoch_end(const epoch_record& r, training_control&) override {
    const auto it = r.validation.find(watched_);
    if (it == r.validation.end())
      throw config_error("BestModel: watches validation '" + watched_ + "' but training has no validation set or no such figure");
    const double value = higher_ ? -it->second : it->second;
    if (!(value < best_)) return;  // NaN never counts as better
    best_ = value;
    best_epoch_ = r.epoch;
    best_state_ = state_file{};
    write_model_state(best_state_, model_);
  }

  /// Epoch of the best figure (-1 before any epoch ended).
  Index best_epoch() const { return best_epoch_; }
  /// The best figure (as watched: not negated).
  double best_value() const { return higher_ ? -best_ : best_; }

  /// Puts the best epoch's weights and buffers back into the model (its groups stay as they
  /// are). Throws config_error if no epoch has ended.
  void restore() {
    if (best_epoch_ < 0) throw config_error("BestModel::restore: no epoch has ended yet");
    checked_model_state<ModelT>(best_state_, model_, [](const std::string& what) {
      return config_error("BestModel: the remembered state " + what);
    }).apply(false);
  }

 private:
  ModelT& model_;
  std::string watched_;
  bool higher_;
  double best_ = std::numeric_limits<double>::infinity();
  Index best_epoch_ = -1;
  state_file best_state_;
};

/// One step of gradual unfreezing: the layers `pattern` selects (Model::set_group's syntax)
/// start training at epoch `epoch`.
struct thaw_stage {
  Index epoch = 0;
  std::string pattern;
};

/// Freezes every stage's layers when training starts and thaws each at its epoch (into group
/// `thawed`). Stages whose epoch has passed when a run resumes are thawed from the start.
template <class ModelT>
class GradualUnfreezing : public callback {
 public:
  GradualUnfreezing(ModelT& model, std::vector<thaw_stage> stages, parameter_group thawed = {})
      : model_(model), stages_(std::move(stages)), thawed_(thawed) {
    for (const auto& s : stages_)
      if (s.epoch < 0) throw config_error(detail::concat("GradualUnfreezing: '", s.pattern, "' thaws at epoch ", s.epoch));
  }

  void on_train_begin(const train_info& info) override {
    for (const auto& s : stages_) {
      if (s.epoch > info.first_epoch) model_.freeze(s.pattern);
      else model_.set_group(s.pattern, thawed_);
    }
  }
  void on_epoch_begin(Index epoch, training_control&) override {
    for (const auto& s : stages_)
      if (s.epoch == epoch) model_.set_group(s.pattern, thawed_);
  }

 private:
  ModelT& model_;
  std::vector<thaw_stage> stages_;
  parameter_group thawed_;
};

/// How `fit_to_best` trains.
struct fit_to_best_options {
  Index max_epochs = 30;        ///< at most this many epochs
  Index patience = 3;           ///< stop after this many epochs without improvement
  double min_delta = 0.0;       ///< an improvement smaller than this does not count
  std::string watched = "loss"; ///< the validation figure early stopping and the best model follow
  bool higher_is_better = false;
  std::vector<thaw_stage> thaw; ///< gradual unfreezing (empty: everything trains from the start)
  /// Lowers the rate when the watched figure stalls (PlateauSchedule), so that early stopping
  /// ends a run that has settled rather than one that is bouncing at too high a rate.
  std::optional<ReduceLROnPlateau> plateau;
};

/// What `fit_to_best` did.
struct fit_to_best_outcome {
  Index epochs_run = 0;  ///< epochs trained
  Index best_epoch = -1; ///< the epoch whose model the trainer now holds
  double best_value = 0.0;  ///< its validation figure
  std::vector<epoch_record> history;
};

/// Trains `trainer`'s model on `train` with early stopping on `validation`, then restores the
/// best epoch's model. Adds its callbacks to the trainer (use a trainer per fit).
template <class TrainerT, class Dataset>
fit_to_best_outcome fit_to_best(TrainerT& trainer, const Dataset& train, const Dataset& validation,
                                const fit_to_best_options& options) {
  using ModelT = typename TrainerT::model_type;
  if (options.max_epochs < 1) throw config_error(detail::concat("fit_to_best: max_epochs must be positive, got ", options.max_epochs));
  if (validation.size() == 0) throw data_error("fit_to_best: the validation set is empty (early stopping needs one)");
  auto best = std::make_shared<BestModel<ModelT>>(trainer.model(), options.watched, options.higher_is_better);
  if (!options.thaw.empty()) trainer.add_callback(std::make_shared<GradualUnfreezing<ModelT>>(trainer.model(), options.thaw));
  if (options.plateau) {
    if ((options.plateau->mode == plateau_mode::max) != options.higher_is_better)
      throw config_error("fit_to_best: the plateau schedule's mode and higher_is_better disagree about '" + options.watched + "'");
    trainer.add_callback(std::make_shared<PlateauSchedule>(*options.plateau, options.watched));
  }
  trainer.add_callback(best);
  trainer.add_callback(std::make_shared<EarlyStopping>(options.watched, options.patience, options.min_delta, options.higher_is_better));
  fit_to_best_outcome out;
  out.history = trainer.fit(train, trainer.epoch() + options.max_epochs, &validation);
  out.epochs_run = static_cast<Index>(out.history.size());
  best->restore();
  out.best_epoch = best->best_epoch();
  out.best_value = best->best_value();
  return out;
}

}  // namespace strata
