#pragma once
/// \file tournament.hpp
/// `Tournament<Inner, Comm>`: tournament parallelism (LTFB, "livermore tournament fast batch",
/// Jacobs et al., MLHPC 2017). The world splits into T trainers of `ranks_per_trainer`
/// consecutive ranks; each trainer is itself parallel by `Inner` (Serial, DataParallel or
/// ModelParallel over the trainer's ranks) and trains its own model on its own data. Between
/// rounds of training, trainers meet in pairs and the worse model of a pair is replaced.
///
/// As a strategy it is `Inner` over the trainer's communicator (it derives from it), so a
/// trainer trains exactly as it would alone and every hook of the contract reaches Inner. Its own part is what a round
/// needs, used by `LTFB` (train/ltfb.hpp):
///   partners(round)       a shuffle of 0..T-1 from a generator every rank seeds alike, read in
///                         pairs (no messages needed to agree); an odd one out plays itself
///   exchange(mine, p)     the trainer roots swap byte strings (send/recv), then each root
///                         broadcasts both inside its trainer
///   check_round(n, done)  every rank of every trainer states how many rounds it has played and
///                         whether it has finished; any disagreement fails on every rank at
///                         once, so a trainer that runs more rounds than another cannot hang
///   gather_record(...)    every trainer's result of a round, on every rank (for logs)
/// `is_root()` is the trainer's root, so every trainer prints and checkpoints as if alone: give
/// each trainer its own checkpoint path (e.g. with `trainer()` in the name).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../core/parameter_store.hpp"
#include "../core/random.hpp"
#include "../core/tensor.hpp"
#include "../layers/layer.hpp"
#include "communicator.hpp"
#include "serial.hpp"

namespace strata {

/// Settings of `Tournament`.
struct tournament_options {
  /// Ranks of each trainer; the world size must be a multiple (T = ranks / ranks_per_trainer).
  int ranks_per_trainer = 1;
  /// Seed of the pairing shuffles (the same on every rank).
  std::uint64_t seed = 0;
  /// Give every trainer the same seeds (initial weights, data order, dropout). By default each
  /// trainer derives its own (`trainer_seed`), so the population starts diverse.
  bool identical_seeds = false;
};

/// One trainer's side of one round.
struct tournament_record {
  std::uint64_t round = 0;
  std::uint64_t step = 0;    ///< optimizer steps taken before the round
  int trainer = 0;
  int partner = 0;           ///< == trainer when it played itself
  double own_score = NAN;    ///< its model on its tournament set, before the round
  double partner_score = NAN;  ///< the partner's model on the same set
  bool adopted = false;      ///< whether it now trains the partner's model
  double learning_rate = 0;  ///< after the round (perturbed on adoption when enabled)
  double dropout = NAN;      ///< mean dropout rate of its model after the round (NaN: no dropout)

  /// The record as `fields` numbers (how rounds travel between ranks and into checkpoints).
  static constexpr std::size_t fields = 9;
  void to_values(double* v) const {
    const double values[fields] = {static_cast<double>(round), static_cast<double>(step), static_cast<double>(trainer),
                                   static_cast<double>(partner), own_score, partner_score, adopted ? 1.0 : 0.0,
                                   learning_rate, dropout};
    std::copy(values, values + fields, v);
  }
  static tournament_record from_values(const double* v) {
    tournament_record t;
    t.round = static_cast<std::uint64_t>(v[0]);
    t.step = static_cast<std::uint64_t>(v[1]);
    t.trainer = static_cast<int>(v[2]);
    t.partner = static_cast<int>(v[3]);
    t.own_score = v[4];
    t.partner_score = v[5];
    t.adopted = v[6] != 0.0;
    t.learning_rate = v[7];
    t.dropout = v[8];
    return t;
  }
};

namespace detail {
/// The communicators of a tournament, built before the trainer's own strategy (a base listed
/// first is constructed first), which runs over `trainer_comm`.
template <class Comm>
struct tournament_world {
  Comm world;
  tournament_options options;
  Comm trainer_comm;
};
}  // namespace detail

template <class Inner, class Comm>
class Tournament : private detail::tournament_world<Comm>, public Inner {
  using world_type = detail::tournament_world<Comm>;

 public:
  static constexpr const char* name = "tournament";
  using inner_type = Inner;

  /// Splits `world` into trainers; `make_inner` builds each trainer's strategy over the
  /// trainer's communicator (by default `Inner(comm)` when Inner takes one, else `Inner{}`).
  /// The training loop's calls go to that strategy, which this one is (it derives from Inner).
  explicit Tournament(Comm world = {}, tournament_options options = {},
                      std::function<Inner(Comm)> make_inner = default_inner)
      : world_type{world, checked(options, world.size()),
                   world.split(world.rank() / options.ranks_per_trainer, world.rank() % options.ranks_per_trainer)},
        Inner(make_inner(world_type::trainer_comm)) {}

  /// This rank's trainer (0..T-1) and the number of trainers.
  int trainer() const { return world_type::world.rank() / world_type::options.ranks_per_trainer; }
  int trainers() const { return world_type::world.size() / world_type::options.ranks_per_trainer; }
  /// Whether this rank is its trainer's root (the one that exchanges and writes).
  bool is_trainer_root() const { return world_type::trainer_comm.rank() == 0; }
  Inner& inner() { return *this; }
  Comm& world() { return world_type::world; }
  Comm& trainer_communicator() { return world_type::trainer_comm; }
  const tournament_options& options() const { return world_type::options; }

  /// The seed this trainer uses in place of `seed`: its own unless identical seeds are asked for.
  std::uint64_t trainer_seed(std::uint64_t seed) const {
    return world_type::options.identical_seeds ? seed : mix64(seed ^ mix64(0x7E57ull + static_cast<std::uint64_t>(trainer())));
  }

  /// Partner of every trainer in round `round` (a trainer paired with itself sits out).
  std::vector<int> partners(std::uint64_t round) const { return pairing(trainers(), world_type::options.seed, round); }

  /// The pairing of `trainers` in `round`: consecutive entries of a seeded shuffle play each other.
  static std::vector<int> pairing(int trainers, std::uint64_t seed, std::uint64_t round) {
    const auto order = permutation(trainers, random_stream(seed, purpose::tournament, round));
    std::vector<int> partner(static_cast<std::size_t>(trainers));
    for (std::size_t k = 0; k + 1 < order.size(); k += 2) {
      partner[static_cast<std::size_t>(order[k])] = static_cast<int>(order[k + 1]);
      partner[static_cast<std::size_t>(order[k + 1])] = static_cast<int>(order[k]);
    }
    if (order.size() % 2 == 1) partner[static_cast<std::size_t>(order.back())] = static_cast<int>(order.back());
    return partner;
  }

  /// Fails on every rank unless every rank of every trainer is at round `round` and all agree
  /// on whether training has finished: trainers that would play different numbers of rounds
  /// stop with a message instead of waiting for each other forever.
  void check_round(std::uint64_t round, bool finished) {
    const std::uint64_t mine = round * 2 + (finished ? 1 : 0);
    const auto p = static_cast<std::size_t>(world_type::world.size());
    std::vector<std::uint64_t> all(p);
    world_type::world.all_gather(&mine, all.data(), std::vector<std::size_t>(p, 1));
    for (std::size_t r = 0; r < p; ++r) {
      if (all[r] == all[0]) continue;
      const auto describe = [&](std::size_t rank) {
        const std::uint64_t v = all[rank];
        return (v & 1u) != 0 ? detail::concat("has finished training after ", v / 2, " tournaments")
                             : detail::concat("is about to play tournament ", v / 2 + 1);
      };
      throw config_error(detail::concat("Tournament: trainer ", static_cast<int>(r) / world_type::options.ranks_per_trainer, " ",
                                        describe(r), " but trainer 0 ", describe(0),
                                        "; every trainer must play the same number of tournaments (same data size, "
                                        "batch size, epochs and tournament interval)"));
    }
  }

  /// Swaps byte strings with trainer `partner`'s root (only this trainer's root's `mine` counts)
  /// and returns {mine, partner's} on every rank of this trainer.
  std::pair<std::string, std::string> exchange(std::string mine, int partner) {
    std::string theirs;
    if (is_trainer_root() && partner != trainer()) {
      const int other = partner * world_type::options.ranks_per_trainer;
      // The lower trainer sends first, so two blocking exchanges never wait on each other.
      if (trainer() < partner) {
        send_string(mine, other);
        theirs = recv_string(other);
      } else {
        theirs = recv_string(other);
        send_string(mine, other);
      }
    }
    broadcast_string(mine);
    broadcast_string(theirs);
    return {std::move(mine), std::move(theirs)};
  }

  /// The trainer root's `bytes` on every rank of this trainer.
  std::string share_in_trainer(std::string bytes) {
    broadcast_string(bytes);
    return bytes;
  }

  /// Every trainer's record of a round, on every rank, in trainer order.
  std::vector<tournament_record> gather_record(const tournament_record& mine) {
    double values[tournament_record::fields];
    mine.to_values(values);
    const auto p = static_cast<std::size_t>(world_type::world.size());
    std::vector<double> all(p * tournament_record::fields);
    world_type::world.all_gather(values, all.data(), std::vector<std::size_t>(p, tournament_record::fields));
    std::vector<tournament_record> records;
    for (std::size_t r = 0; r < p; r += static_cast<std::size_t>(world_type::options.ranks_per_trainer))
      records.push_back(tournament_record::from_values(all.data() + r * tournament_record::fields));
    return records;
  }

 private:
  static Inner default_inner(Comm comm) {
    if constexpr (std::is_constructible_v<Inner, Comm>) return Inner(std::move(comm));
    else return Inner{};
  }

  static tournament_options checked(tournament_options options, int p) {
    if (options.ranks_per_trainer < 1 || p % options.ranks_per_trainer != 0)
      throw config_error(detail::concat("Tournament: ", p, " ranks cannot form trainers of ", options.ranks_per_trainer,
                                        " ranks (the rank count must be a multiple of the ranks per trainer)"));
    return options;
  }

  static constexpr int size_tag = 0x5A, bytes_tag = 0x5B;

  void send_string(const std::string& s, int to) {
    const std::uint64_t n = s.size();
    world_type::world.send(&n, 1, to, size_tag);
    world_type::world.send(s.data(), s.size(), to, bytes_tag);
  }
  std::string recv_string(int from) {
    std::uint64_t n = 0;
    world_type::world.recv(&n, 1, from, size_tag);
    std::string s(static_cast<std::size_t>(n), '\0');
    world_type::world.recv(s.data(), s.size(), from, bytes_tag);
    return s;
  }
  void broadcast_string(std::string& s) {
    if (world_type::trainer_comm.size() == 1) return;
    std::uint64_t n = s.size();
    world_type::trainer_comm.broadcast(&n, 1, 0);
    s.resize(static_cast<std::size_t>(n));
    world_type::trainer_comm.broadcast(s.data(), s.size(), 0);
  }
};

}  // namespace strata
