#pragma once
/// \file ltfb.hpp
/// `LTFB<Trainer, Dataset>`: the tournament rounds of tournament parallelism, as a training
/// callback of a trainer whose strategy is a `Tournament` (parallel/tournament.hpp).
///
/// A round, on every rank of every trainer (Jacobs et al., MLHPC 2017; docs/design.md §3):
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
///
/// With a checkpoint path, every trainer's root writes its trainer's whole state after every
/// round (model, optimizer state, loop position, its perturbed learning rate and dropout rates,
/// the rounds so far) to `<path>.trainer<k>`, keeping the previous round's file as
/// `<path>.trainer<k>.prev`. `resume(path)` continues from the newest round that every trainer
/// has (a job killed while writing may leave some trainers one round ahead): the pairings and
/// jitter draws are functions of (seed, round), so the resumed population ends with the same
/// models, bit for bit, as one never interrupted.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../core/parse.hpp"
#include "../core/random.hpp"
#include "../parallel/tournament.hpp"
#include "callback.hpp"
#include "checkpoint.hpp"
#include "ltfb_policies.hpp"

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
  /// Where every trainer's root writes its trainer's state after every round
  /// (`<path>.trainer<k>`, the previous round's kept as `.prev`); empty: no checkpoints. Nothing
  /// is written before the first round. The population's shape, the trainer and the seed are
  /// stored and checked on resume; the round interval, metric and jitter are not: resume with
  /// the same options.
  std::string checkpoint_path;
};

/// The file trainer `trainer` of a tournament checkpoints to under `path`.
inline std::string ltfb_checkpoint_file(const std::string& path, int trainer) {
  return detail::concat(path, ".trainer", trainer);
}

/// The rounds, with pairing, adoption rule and perturbation as replaceable policies
/// (train/ltfb_policies.hpp); by default they follow `ltfb_options`.
template <class TrainerT, class Dataset, class Pairing = RandomPairing, class Adoption = KeepStrictlyBetter,
          class Perturbation = LogNormalJitter>
class LTFB : public callback {
 public:
  /// `trainer` must outlive this callback; `tournament_set` is this trainer's own held-out set.
  /// The default policies take the metric's direction and the jitter from `options`.
  LTFB(TrainerT& trainer, const Dataset& tournament_set, ltfb_options options = {})
      : LTFB(trainer, tournament_set, options, Pairing{}, default_adoption(options), default_perturbation(options)) {}
  /// With policies of one's own (the options' metric still names the score they compare).
  LTFB(TrainerT& trainer, const Dataset& tournament_set, ltfb_options options, Pairing pairing, Adoption adoption,
       Perturbation perturbation)
      : trainer_(trainer), set_(tournament_set), options_(std::move(options)), pairing_(std::move(pairing)),
        adoption_(std::move(adoption)), perturbation_(std::move(perturbation)) {
    higher_is_better(options_.metric);  // an unknown metric fails here, not at the first round
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
    out << log_header;
  }

  void on_batch_end(const batch_progress& progress) override {
    if (options_.every_steps > 0 && progress.step % options_.every_steps == 0) {
      play();
      save_round();
    }
  }

  void on_epoch_begin(Index, training_control&) override {
    // A round played at the end of the previous epoch is saved now that the trainer stands at
    // the start of this one (saved at the epoch's end, a resumed run would repeat the epoch).
    if (std::exchange(save_pending_, false)) save_round();
  }

  void on_epoch_end(const epoch_record&, training_control& control) override {
    if (options_.every_steps == 0) {
      play();
      control.learning_rate = trainer_.learning_rate();  // the rate of the model kept
      save_pending_ = true;
    }
  }

  /// Confirms that every trainer has finished after the same number of rounds.
  void on_train_end() override {
    if (std::exchange(save_pending_, false)) save_round();
    tournament().check_round(rounds_, true);
  }

  /// Continues from the checkpoints written under `path` (see `ltfb_options::checkpoint_path`):
  /// every trainer restores its model, optimizer state, loop position and hyperparameters from
  /// the newest round that all trainers have, and the rounds so far (the log is rewritten to
  /// them). Collective over the world; call it before `fit`. Every rank throws io_error when
  /// any trainer's files are missing, damaged, of another population or of rounds the trainers
  /// cannot agree on (the trainer that could not read its file says why). Returns this
  /// trainer's checkpoint (for extras the caller stored in it).
  checkpoint resume(const std::string& path) {
    auto& t = tournament();
    const std::string mine = ltfb_checkpoint_file(path, t.trainer());
    // The trainer root reads and checks both generations; then every rank learns every
    // trainer's rounds, or that it failed, so that all ranks go on or stop together.
    std::string newest, previous, problem;
    std::uint64_t state[3] = {0, missing, missing};  // failed?, rounds in the newest, in .prev
    if (t.is_trainer_root()) {
      try {
        newest = read_generation(mine, state[1]);
        previous = read_generation(mine + ".prev", state[2]);
        if (state[1] == missing && state[2] == missing) throw io_error("no tournament checkpoint '" + mine + "'");
      } catch (const error& e) {
        state[0] = 1;
        problem = e.what();
      }
    }
    const auto p = static_cast<std::size_t>(t.world().size());
    std::vector<std::uint64_t> all(3 * p);
    t.world().all_gather(state, all.data(), std::vector<std::size_t>(p, 3));
    const auto step = static_cast<std::size_t>(t.options().ranks_per_trainer);
    for (std::size_t r = 0; r < p; r += step)
      if (all[3 * r] != 0)
        throw io_error(!problem.empty() ? "LTFB: cannot resume: " + problem
                                        : detail::concat("LTFB: cannot resume: trainer ", r / step,
                                                         " could not read its checkpoint (its rank says why)"));
    // A trainer killed between moving its file aside and writing the next has only the older
    // one, so a generation is the newer of the two it has.
    const auto newest_of = [&](std::size_t r) {
      return all[3 * r + 1] == missing ? all[3 * r + 2] : all[3 * r + 2] == missing ? all[3 * r + 1]
                                                                                     : std::max(all[3 * r + 1], all[3 * r + 2]);
    };
    std::uint64_t target = newest_of(0);
    for (std::size_t r = 0; r < p; r += step) target = std::min(target, newest_of(r));
    const auto describe = [](std::uint64_t rounds) { return rounds == missing ? std::string("none") : std::to_string(rounds); };
    for (std::size_t r = 0; r < p; r += step)
      if (all[3 * r + 1] != target && all[3 * r + 2] != target)
        throw io_error(detail::concat("LTFB: cannot resume: trainer ", r / step, " has checkpoints after ",
                                      describe(all[3 * r + 1]), " and ", describe(all[3 * r + 2]),
                                      " rounds but another trainer's newest is after ", target,
                                      " rounds (checkpoints of different runs?)"));
    const bool use_newest = all[3 * static_cast<std::size_t>(t.trainer()) * step + 1] == target;
    const std::string source = detail::concat("tournament checkpoint '", mine, use_newest ? "" : ".prev", "'");
    const checkpoint file = checkpoint::from_bytes(t.share_in_trainer(use_newest ? newest : previous), source);
    host_matrix<double> values;
    checkpoint::extract(*file.find("ltfb/history"), values);  // checked by read_generation
    trainer_.restore(file, source, true);
    rounds_ = target;
    history_.assign(rounds_, {});
    for (Index c = 0; c < values.cols(); ++c)
      history_[static_cast<std::size_t>(c) / static_cast<std::size_t>(t.trainers())].push_back(
          tournament_record::from_values(values.col(c).data()));
    rewrite_log();
    return file;
  }

  /// Plays one round now (collective over the whole world).
  void play() {
    auto& t = tournament();
    t.check_round(rounds_, false);
    tournament_record record;
    record.round = rounds_;
    record.step = trainer_.step();
    record.trainer = t.trainer();
    record.partner = pairing_(t.trainers(), t.options().seed, rounds_)[static_cast<std::size_t>(t.trainer())];
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
        // (learning rate); then explored: one stream per trainer and round.
        const random_stream draws(t.options().seed, purpose::tournament,
                                  (static_cast<std::uint64_t>(record.trainer) << 32) + 0x1000u + rounds_);
        perturbation_(trainer_, std::stod(partner.meta.at("learning_rate")), draws);
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

  /// Writes this trainer's state after the rounds so far (see `ltfb_options::checkpoint_path`).
  /// Collective over the trainer; only its root writes.
  void save_round() {
    if (options_.checkpoint_path.empty()) return;
    auto& t = tournament();
    checkpoint file = trainer_.snapshot();
    file.meta["ltfb/rounds"] = std::to_string(rounds_);
    file.meta["ltfb/trainers"] = std::to_string(t.trainers());
    file.meta["ltfb/ranks_per_trainer"] = std::to_string(t.options().ranks_per_trainer);
    file.meta["ltfb/trainer"] = std::to_string(t.trainer());
    file.meta["ltfb/seed"] = std::to_string(t.options().seed);
    host_matrix<double> values(static_cast<Index>(tournament_record::fields),
                               static_cast<Index>(rounds_) * t.trainers());
    Index column = 0;
    for (const auto& round : history_)
      for (const auto& record : round) record.to_values(values.col(column++).data());
    file.add("ltfb/history", values);
    if (!t.is_trainer_root()) return;
    const std::string path = ltfb_checkpoint_file(options_.checkpoint_path, t.trainer());
    // The previous round's file stays until this one is complete: a job killed while some
    // trainers are still writing resumes from the round they all have.
    if (std::ifstream(path).good() && std::rename(path.c_str(), (path + ".prev").c_str()) != 0)
      throw io_error("LTFB: cannot rename '" + path + "' to '" + path + ".prev'");
    file.write(path);
  }

  /// Whether score `challenger` wins against `incumbent` (the adoption policy).
  bool better(double challenger, double incumbent) const { return adoption_(challenger, incumbent); }

 private:
  static Adoption default_adoption(const ltfb_options& o) {
    if constexpr (std::is_same_v<Adoption, KeepStrictlyBetter>) return KeepStrictlyBetter{higher_is_better(o.metric)};
    else return Adoption{};
  }
  static Perturbation default_perturbation(const ltfb_options& o) {
    if constexpr (std::is_same_v<Perturbation, LogNormalJitter>) return LogNormalJitter{o.perturb_learning_rate, o.perturb_dropout};
    else return Perturbation{};
  }

  auto& tournament() { return trainer_.strategy(); }

  /// The trainer's model on its tournament set; non-finite outputs score NaN instead of stopping.
  double score() {
    const auto e = trainer_.evaluate(set_, false);
    return options_.metric == "loss" ? e.loss : e.metrics.at(options_.metric);
  }

  static constexpr const char* log_header = "round,step,trainer,partner,own_score,partner_score,adopted,learning_rate,dropout\n";

  static constexpr std::uint64_t missing = ~std::uint64_t{0};

  /// The bytes of tournament checkpoint `path`, checked to belong to this trainer of this
  /// population with a sound history, and (in `rounds`) the rounds it holds; "" and `missing`
  /// when the file does not exist.
  std::string read_generation(const std::string& path, std::uint64_t& rounds) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return {};
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::string source = "tournament checkpoint '" + path + "'";
    const checkpoint file = checkpoint::from_bytes(bytes, source);
    auto& t = tournament();
    const auto entry = [&](const char* key) {
      const auto it = file.meta.find(key);
      if (it == file.meta.end()) throw io_error(source + " has no '" + key + "' entry: not a tournament checkpoint");
      std::uint64_t value = 0;
      if (!detail::parse_unsigned(it->second, missing - 1, value))
        throw io_error(source + " has a malformed entry '" + key + "' = '" + it->second + "'");
      return value;
    };
    rounds = entry("ltfb/rounds");
    const std::uint64_t trainers = entry("ltfb/trainers"), ranks = entry("ltfb/ranks_per_trainer");
    if (trainers != static_cast<std::uint64_t>(t.trainers()) || ranks != static_cast<std::uint64_t>(t.options().ranks_per_trainer))
      throw io_error(detail::concat(source, " was written by a population of ", trainers, " trainers x ", ranks,
                                    " rank(s); this run has ", t.trainers(), " trainers x ", t.options().ranks_per_trainer,
                                    " rank(s): resume with the same population"));
    if (entry("ltfb/trainer") != static_cast<std::uint64_t>(t.trainer()) || entry("ltfb/seed") != t.options().seed)
      throw io_error(source + " belongs to another trainer or tournament seed");
    check_history(file, rounds, source);
    return bytes;
  }

  /// Throws io_error unless `file` holds a history of `rounds` rounds of this population whose
  /// numbers convert to records (finite, integral and in range where they are counts).
  void check_history(const checkpoint& file, std::uint64_t rounds, const std::string& source) {
    const auto trainers = static_cast<std::uint64_t>(tournament().trainers());
    const checkpoint::tensor* records = file.find("ltfb/history");
    if (records == nullptr || records->rows != static_cast<std::int64_t>(tournament_record::fields) ||
        rounds > static_cast<std::uint64_t>(records->cols) || static_cast<std::uint64_t>(records->cols) != rounds * trainers)
      throw io_error(detail::concat(source, " has no tournament history of ", rounds, " rounds"));
    host_matrix<double> values;
    checkpoint::extract(*records, values);
    const auto count = [](double v, double limit) { return v >= 0 && v <= limit && v == std::floor(v); };
    for (Index c = 0; c < values.cols(); ++c) {
      const double* v = values.col(c).data();
      const auto column = static_cast<std::uint64_t>(c);
      if (!(count(v[0], 1e15) && static_cast<std::uint64_t>(v[0]) == column / trainers && count(v[1], 1e15) &&
            count(v[2], 1e9) && static_cast<std::uint64_t>(v[2]) == column % trainers && count(v[3], 1e9) &&
            static_cast<std::uint64_t>(v[3]) < trainers && (v[6] == 0.0 || v[6] == 1.0)))
        throw io_error(detail::concat(source, " has a malformed tournament record (column ", c, ")"));
    }
  }

  /// World rank 0 writes the log again from the rounds kept (after a resume).
  void rewrite_log() {
    if (options_.log_path.empty() || tournament().world().rank() != 0) return;
    {
      std::ofstream out(options_.log_path, std::ios::trunc);
      if (!out) throw io_error("LTFB: cannot write the tournament log '" + options_.log_path + "'");
      out << log_header;
    }
    for (const auto& round : history_) write_log(round);
  }

  double mean_dropout() {
    double sum = 0.0;
    int count = 0;
    trainer_.model().for_each_setting([&](const std::string& name, double& value) {
      if (LogNormalJitter::is_dropout_rate(name)) {
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
  Pairing pairing_;
  Adoption adoption_;
  Perturbation perturbation_;
  std::uint64_t rounds_ = 0;
  bool save_pending_ = false;
  std::vector<std::vector<tournament_record>> history_;
  std::function<void(const std::vector<tournament_record>&)> on_round_;
};

}  // namespace strata
