#pragma once
/// \file network_learner.hpp
/// The learner that trains a network for a learning curve (analysis/learning_curve.hpp): for
/// every task a fresh model of type `Spec` from the factory, initialised from the task's own
/// seed, trained with the given optimizer and loss by the job's strategy (Serial, or
/// DataParallel over the job's ranks), stopped early on the task's validation set and rolled
/// back to its best epoch (train/refinement.hpp), then asked for the test set's predictions.
///
///     NetworkLearner<TwoSubnetwork, Adam> mnn([&] { return make_two_subnetwork(sizes); }, Adam{1e-3},
///                                            training, fitting);
///     curve.run(world, [&](const auto& task, auto strategy) { return mnn(task, std::move(strategy)); });

#include <functional>
#include <utility>

#include "../graph/model.hpp"
#include "../loss/mse.hpp"
#include "../train/refinement.hpp"
#include "../train/trainer.hpp"
#include "learning_curve.hpp"

namespace strata {

/// Trains networks of type `Spec` for learning-curve tasks (see the file comment).
template <class Spec, class Optimizer, class Loss = MSE>
class NetworkLearner {
 public:
  /// `make()` returns a new, unbuilt network; `training` holds the batch size and the like (its
  /// seed is replaced by each task's); `fitting` the epochs and the early stopping.
  NetworkLearner(std::function<Spec()> make, Optimizer optimizer, trainer_options training, fit_to_best_options fitting)
      : make_(std::move(make)), optimizer_(std::move(optimizer)), training_(std::move(training)), fitting_(std::move(fitting)) {}

  template <class T, class Strategy>
  curve_outcome operator()(const curve_task<T>& task, Strategy strategy) const {
    Model<Spec> model(make_());
    model.build(task.data->sample_width(), task.seed);
    trainer_options o = training_;
    o.seed = task.seed;
    Trainer<Spec, Loss, Optimizer, Strategy> trainer(std::move(model), Loss{}, optimizer_, std::move(strategy), o);
    const fit_to_best_outcome fit = fit_to_best(trainer, task.train_set(), task.validation_set(), fitting_);
    return {trainer.predict(task.test_set()).template cast<float>(), fit.epochs_run};
  }

 private:
  std::function<Spec()> make_;
  Optimizer optimizer_;
  trainer_options training_;
  fit_to_best_options fitting_;
};

}  // namespace strata
