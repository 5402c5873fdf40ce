#pragma once
/// \file ltfb.hpp
/// `LTFB<Trainer, Dataset>`: the tournament rounds of tournament parallelism, as a training
/// callback of a trainer whose strategy is a `Tournament` (parallel/tournament.hpp).
///
/// A round, on every rank of every trainer (Jacobs et al., MLHPC 2017; DESIGN.md §3):
///   1. all ranks check that everyone is playing the same round (else all fail at once);
///   2. the pairing of the round comes from the shared seeded shuffle;
///   3. the trainer scores its own model on its local tournament set;
///   4. the trainer roots swap their models (weights, buffers, optimizer state), each root
///      broadcasts inside its trainer, and the trainer scores the partner's model on the same
///      set;
///   5. it keeps the partner's model only if that scores strictly better (a non-finite score
///      never wins; any finite score beats a non-finite one), else restores its own, so both
///      trainers of a pair end with the better model (when their sets agree);
///   6. on adoption it takes the partner's learning rate and dropout rates, optionally jittered
///      (population-based training: value x exp(sigma N(0,1)), drawn from the tournament seed,
///      trainer and round; dropout rates are kept in [0, 0.9]).
/// Every trainer's side of every round is kept in `history()` on every rank and, when a log
/// path is set, appended by world rank 0 to a CSV file.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "../core/random.hpp"
#include "../parallel/tournament.hpp"
#include "callback.hpp"
#include "checkpoint.hpp"

namespace strata {

/// Settings of the tournament rounds.
struct ltfb_options {
  /// A round every this many optimizer steps; 0: a round after every epoch.
  std::uint64_t every_steps = 0;
  /// What decides a round, on the tournament set: "loss" or a metric ("mse", "mae", "rmse":
  /// lower is better; "r2", "pearson", "spearman": higher is better).
  std::string metric = "loss";
  /// Standard deviation of the log-normal learning-rate jitter on adoption; 0: no jitter.
  double perturb_learning_rate = 0.0;
  /// Standard deviation of the log-normal jitter of every dropout rate on adoption; 0: none.
  double perturb_dropout = 0.0;
  /// CSV file of every trainer's side of every round (written by world rank 0); empty: none.
  std::string log_path;
};

/// Whether a tournament metric is better when higher.
inline bool higher_is_better(const std::string& metric) {
  if (metric == "loss" || metric == "mse" || metric == "mae" || metric == "rmse") return false;
  if (metric == "r2" || metric == "pearson" || metric == "spearman") return true;
  throw config_error("LTFB: unknown tournament metric '" + metric + "' (loss, mse, mae, rmse, r2, pearson, spearman)");
}

template <class TrainerT, class Dataset>
class LTFB : public callback {
 public:
  /// `trainer` must outlive this callback; `tournament_set` is this trainer's own held-out set.
  LTFB(TrainerT& trainer, const Dataset& tournament_set, ltfb_options options = {})
      : trainer_(trainer), set_(tournament_set), options_(std::move(options)),
        higher_better_(higher_is_better(options_.metric)) {
    if (tournament_set.size() == 0) throw data_error("LTFB: the tournament set is empty");
  }

  /// Called after every round with every trainer's record of it (on every rank).
  void on_round(std::function<void(const std::vector<tournament_record>&)> f) { on_round_ = std::move(f); }

  /// Every round so far: one record per trainer, in trainer order.
  const std::vector<std::vector<tournament_record>>& history() const { return history_; }
  std::uint64_t rounds() const { return rounds_; }

  void on_train_begin(const train_info&) override {
    if (options_.log_path.empty() || tournament().world().rank() != 0) return;
    std::ifstream existing(options_.log_path);
    if (existing.peek() != std::ifstream::traits_type::eof()) return;  // continue an existing log
    std::ofstream out(options_.log_path);
    if (!out) throw io_error("LTFB: cannot write the tournament log '" + options_.log_path + "'");
    out << "round,step,trainer,partner,own_score,partner_score,adopted,learning_rate,dropout\n";
  }

  void on_batch_end(const batch_progress& progress) override {
    if (options_.every_steps > 0 && progress.step % options_.every_steps == 0) play();
  }

  void on_epoch_end(const epoch_record&, training_control&) override {
    if (options_.every_steps == 0) play();
  }

  /// Confirms that every trainer has finished after the same number of rounds.
  void on_train_end() override { tournament().check_round(rounds_, true); }

  /// Plays one round now (collective over the whole world).
  void play() {
    auto& t = tournament();
    t.check_round(rounds_, false);
    tournament_record record;
    record.round = rounds_;
    record.step = trainer_.step();
    record.trainer = t.trainer();
    record.partner = t.partners(rounds_)[static_cast<std::size_t>(t.trainer())];
    record.own_score = score();
    if (record.partner != record.trainer) {
      const checkpoint own = trainer_.snapshot();
      auto [mine, theirs] = t.exchange(t.is_trainer_root() ? own.to_bytes() : std::string(), record.partner);
      const checkpoint partner = checkpoint::from_bytes(theirs, detail::concat("the model of trainer ", record.partner));
      trainer_.restore(partner, detail::concat("the model of trainer ", record.partner), false);
      record.partner_score = score();
      record.adopted = better(record.partner_score, record.own_score);
      if (record.adopted) {
        // The partner's hyperparameters came with its model (dropout rates) or are taken here
        // (learning rate); then explored: one stream per trainer and round, one draw per value.
        const random_stream jitter(t.options().seed, purpose::tournament,
                                   (static_cast<std::uint64_t>(record.trainer) << 32) + 0x1000u + rounds_);
        std::uint64_t draw = 0;
        double lr = std::stod(partner.meta.at("learning_rate"));
        if (options_.perturb_learning_rate > 0) lr *= std::exp(options_.perturb_learning_rate * jitter.normal(draw++));
        trainer_.set_learning_rate(lr);
        if (options_.perturb_dropout > 0)
          trainer_.model().for_each_setting([&](const std::string& name, double& value) {
            if (is_dropout_rate(name))
              value = std::min(0.9, value * std::exp(options_.perturb_dropout * jitter.normal(draw++)));
          });
      } else {
        trainer_.restore(checkpoint::from_bytes(mine, "this trainer's own model"), "this trainer's own model", false);
      }
    }
    record.learning_rate = trainer_.learning_rate();
    record.dropout = mean_dropout();
    history_.push_back(t.gather_record(record));
    ++rounds_;
    write_log(history_.back());
    if (on_round_) on_round_(history_.back());
  }

  /// Whether score `challenger` beats `incumbent` strictly.
  bool better(double challenger, double incumbent) const {
    if (!std::isfinite(challenger)) return false;
    if (!std::isfinite(incumbent)) return true;
    return higher_better_ ? challenger > incumbent : challenger < incumbent;
  }

 private:
  auto& tournament() { return trainer_.strategy(); }

  /// The trainer's model on its tournament set; non-finite outputs score NaN instead of stopping.
  double score() {
    const auto e = trainer_.evaluate(set_, false);
    return options_.metric == "loss" ? e.loss : e.metrics.at(options_.metric);
  }

  static bool is_dropout_rate(const std::string& setting) {
    return setting.size() > 5 && setting.compare(setting.size() - 5, 5, ".rate") == 0;
  }

  double mean_dropout() {
    double sum = 0.0;
    int count = 0;
    trainer_.model().for_each_setting([&](const std::string& name, double& value) {
      if (is_dropout_rate(name)) {
        sum += value;
        ++count;
      }
    });
    return count > 0 ? sum / count : NAN;
  }

  void write_log(const std::vector<tournament_record>& round) {
    if (options_.log_path.empty() || tournament().world().rank() != 0) return;
    std::ofstream out(options_.log_path, std::ios::app);
    out.precision(9);
    for (const auto& r : round)
      out << r.round << ',' << r.step << ',' << r.trainer << ',' << r.partner << ',' << r.own_score << ','
          << r.partner_score << ',' << (r.adopted ? 1 : 0) << ',' << r.learning_rate << ',' << r.dropout << '\n';
    if (!out) throw io_error("LTFB: writing the tournament log '" + options_.log_path + "' failed");
  }

  TrainerT& trainer_;
  const Dataset& set_;
  ltfb_options options_;
  bool higher_better_;
  std::uint64_t rounds_ = 0;
  std::vector<std::vector<tournament_record>> history_;
  std::function<void(const std::vector<tournament_record>&)> on_round_;
};

}  // namespace strata
