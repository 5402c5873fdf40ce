// Tournament parallelism (LTFB) under mpiexec with 1, 2 and 4 ranks: pairings, adoption of the
// better model, exchange inside data- and model-parallel trainers, and the failure of trainers
// that would play different numbers of rounds.
#include <catch2/catch.hpp>

#include <strata/strata.hpp>
#include <strata/data/dataset.hpp>
#include <strata/parallel/data_parallel.hpp>
#include <strata/parallel/model_parallel.hpp>
#include <strata/parallel/mpi_communicator.hpp>
#include <strata/parallel/tournament.hpp>
#include <strata/train/ltfb.hpp>
#include <strata/train/trainer.hpp>

#include "../support/toy_regression.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <set>
#include <string>

using namespace strata;
using Catch::Matchers::Contains;

namespace {

using Net = Sequential<Dense<>, ReLU, Dropout, Dense<>, Tanh, Dense<1>>;

Net make_net() { return Net{Dense<>{16}, ReLU{}, Dropout{0.1}, Dense<>{16}, Tanh{}, Dense<1>{}}; }

MatrixDataset<float> make_data(Index n, std::uint64_t salt) { return strata::testing::toy_regression(6, n, salt); }

template <class Inner>
using TournamentOf = Tournament<Inner, MpiCommunicator>;
template <class Inner>
using TrainerOf = Trainer<Net, MSE, Adam, TournamentOf<Inner>>;

/// A trainer of the population: its own seed unless `identical`.
template <class Inner>
TrainerOf<Inner> make_trainer(TournamentOf<Inner> strategy) {
  Model<Net> model(make_net());
  row_partition* partition = nullptr;
  if constexpr (std::is_same_v<Inner, ModelParallel<MpiCommunicator>>) partition = strategy.inner().partition();
  model.build(6, strategy.trainer_seed(3), partition);
  trainer_options o;
  o.batch_size = 32;
  o.seed = strategy.trainer_seed(4);
  return TrainerOf<Inner>(std::move(model), MSE{}, Adam{1e-2}, std::move(strategy), o);
}

/// FNV-1a of every whole parameter tensor (collective under model parallelism).
template <class T>
std::uint64_t weight_hash(T& trainer) {
  return weights_checksum(trainer.model(), trainer.strategy());
}

/// Every rank's value, on every rank.
std::vector<std::uint64_t> all_ranks(std::uint64_t mine) {
  MpiCommunicator world;
  std::vector<std::uint64_t> all(static_cast<std::size_t>(world.size()));
  world.all_gather(&mine, all.data(), std::vector<std::size_t>(all.size(), 1));
  return all;
}

/// Makes a model clearly worse: weights scaled up (a large loss) or set to NaN.
template <class T>
void sabotage(T& trainer, bool with_nan) {
  for (auto& p : trainer.model().parameters()) {
    if (with_nan) p.value->setConstant(NAN);
    else *p.value *= 40.0f;
  }
}

}  // namespace

TEST_CASE("Pairings agree on every rank, pair every trainer once, and an odd one plays itself") {
  for (int trainers = 1; trainers <= 9; ++trainers) {
    for (std::uint64_t round = 0; round < 20; ++round) {
      const auto partner = TournamentOf<Serial>::pairing(trainers, 11, round);
      INFO(trainers << " trainers, round " << round);
      int alone = 0;
      for (int t = 0; t < trainers; ++t) {
        const int q = partner[static_cast<std::size_t>(t)];
        REQUIRE((q >= 0 && q < trainers));
        CHECK(partner[static_cast<std::size_t>(q)] == t);  // a pairing: partners of partners are themselves
        alone += q == t;
      }
      CHECK(alone == trainers % 2);
    }
  }
  // Rounds draw different pairings (4 trainers have 3 pairings; 20 rounds see more than one).
  std::set<std::vector<int>> seen;
  for (std::uint64_t round = 0; round < 20; ++round) seen.insert(TournamentOf<Serial>::pairing(4, 11, round));
  CHECK(seen.size() > 1);

  // Every rank derives the same pairing from the shared seed.
  TournamentOf<Serial> t(MpiCommunicator{}, tournament_options{1, 11});
  std::uint64_t h = 0;
  for (std::uint64_t round = 0; round < 5; ++round)
    for (const int q : t.partners(round)) h = mix64(h ^ static_cast<std::uint64_t>(q + 1));
  for (const auto other : all_ranks(h)) CHECK(other == h);
}

TEST_CASE("A clearly worse model adopts its partner's; a better one never does; both end bit-identical") {
  MpiCommunicator world;
  const auto train = make_data(128, static_cast<std::uint64_t>(world.rank()) + 1), held_out = make_data(64, 50);
  for (const bool with_nan : {false, true}) {
    INFO((with_nan ? "NaN weights" : "weights scaled by 40"));
    auto trainer = make_trainer(TournamentOf<Serial>(world, tournament_options{1, 7}));
    LTFB<TrainerOf<Serial>, MatrixDataset<float>> ltfb(trainer, held_out);
    trainer.fit(train, 1);
    auto& t = trainer.strategy();
    const int me = t.trainer(), partner = t.partners(0)[static_cast<std::size_t>(me)];
    const bool worse = partner != me && me > partner;  // the higher trainer of each pair is spoilt
    if (worse) sabotage(trainer, with_nan);
    const std::uint64_t before = weight_hash(trainer);
    ltfb.play();
    const auto& round = ltfb.history().at(0);
    REQUIRE(round.size() == static_cast<std::size_t>(t.trainers()));
    CHECK(round[static_cast<std::size_t>(me)].adopted == worse);
    CHECK(round[static_cast<std::size_t>(partner)].adopted == (partner != me && !worse));
    if (worse) {
      const auto& mine = round[static_cast<std::size_t>(me)];
      CHECK(std::isfinite(mine.partner_score));
      CHECK((!std::isfinite(mine.own_score) || mine.partner_score < mine.own_score));
    }
    const auto hashes = all_ranks(weight_hash(trainer));
    CHECK(hashes[static_cast<std::size_t>(partner)] == hashes[static_cast<std::size_t>(me)]);
    if (!worse) CHECK(hashes[static_cast<std::size_t>(me)] == before);  // the better model is untouched
    // The adopted model carries the partner's optimizer state: training goes on from there in step.
    trainer.fit(train, 2);
    const auto after = all_ranks(weight_hash(trainer));
    if (partner != me) CHECK(after[static_cast<std::size_t>(partner)] != after[static_cast<std::size_t>(me)]);  // own data differs
  }
}

TEST_CASE("Pairing, adoption and perturbation are policies one can replace") {
  MpiCommunicator world;
  const auto train = make_data(128, static_cast<std::uint64_t>(world.rank()) + 1), held_out = make_data(64, 50);
  auto trainer = make_trainer(TournamentOf<Serial>(world, tournament_options{1, 7}));
  // Trainers 2k and 2k+1 always meet, always swap models, and halve the rate they adopt.
  struct Neighbours {
    std::vector<int> operator()(int trainers, std::uint64_t, std::uint64_t) const {
      std::vector<int> partner(static_cast<std::size_t>(trainers));
      for (int k = 0; k < trainers; ++k) partner[static_cast<std::size_t>(k)] = k + 1 < trainers || k % 2 == 1 ? k ^ 1 : k;
      return partner;
    }
  };
  const auto always = [](double, double) { return true; };
  const auto halve = [](TrainerOf<Serial>& t, double rate, const random_stream&) { t.set_learning_rate(rate / 2); };
  LTFB<TrainerOf<Serial>, MatrixDataset<float>, Neighbours, decltype(always), decltype(halve)> ltfb(trainer, held_out, {}, Neighbours{},
                                                                                                    always, halve);
  trainer.fit(train, 1);
  const int me = trainer.strategy().trainer();
  const int partner = Neighbours{}(trainer.strategy().trainers(), 0, 0)[static_cast<std::size_t>(me)];
  const auto before = all_ranks(weight_hash(trainer));
  ltfb.play();
  const auto& mine = ltfb.history().at(0).at(static_cast<std::size_t>(me));
  CHECK(mine.partner == partner);
  CHECK(mine.adopted == (partner != me));
  CHECK(weight_hash(trainer) == before[static_cast<std::size_t>(partner)]);  // the partner's model, whatever it scored
  CHECK(trainer.learning_rate() == (partner != me ? 0.5e-2 : 1e-2));
}

TEST_CASE("With 2 trainers of 2 ranks, the exchange reaches every rank of the trainer") {
  MpiCommunicator world;
  if (world.size() != 4) return;
  const auto train = make_data(128, static_cast<std::uint64_t>(world.rank() / 2) + 1), held_out = make_data(64, 50);

  SECTION("data-parallel trainers") {
    auto trainer = make_trainer(TournamentOf<DataParallel<MpiCommunicator>>(world, tournament_options{2, 7}));
    LTFB<TrainerOf<DataParallel<MpiCommunicator>>, MatrixDataset<float>> ltfb(trainer, held_out);
    trainer.fit(train, 1);
    CHECK(trainer.strategy().trainers() == 2);
    if (trainer.strategy().trainer() == 1) sabotage(trainer, false);
    ltfb.play();
    const auto& round = ltfb.history().at(0);
    CHECK(round[1].adopted);
    CHECK_FALSE(round[0].adopted);
    const auto hashes = all_ranks(weight_hash(trainer));
    for (const auto h : hashes) CHECK(h == hashes[0]);
  }
  SECTION("model-parallel trainers") {
    using MP = ModelParallel<MpiCommunicator>;
    model_parallel_options split;
    split.min_rows_per_rank = 2;
    auto trainer = make_trainer(TournamentOf<MP>(world, tournament_options{2, 7}, [&](MpiCommunicator c) { return MP(c, split); }));
    LTFB<TrainerOf<MP>, MatrixDataset<float>> ltfb(trainer, held_out);
    trainer.fit(train, 1);
    CHECK(trainer.model().parameters()[0].split.split());
    if (trainer.strategy().trainer() == 0) sabotage(trainer, true);
    ltfb.play();
    CHECK(ltfb.history().at(0)[0].adopted);
    const auto hashes = all_ranks(weight_hash(trainer));
    for (const auto h : hashes) CHECK(h == hashes[0]);
  }
}

TEST_CASE("Trainers that would play different numbers of tournaments fail at once, with the reason") {
  MpiCommunicator world;
  if (world.size() == 1) return;
  auto trainer = make_trainer(TournamentOf<Serial>(world, tournament_options{1, 7}));
  // Trainer 1 has twice the data: 8 steps against 4, so with a round every 4 steps it wants a
  // second round when the others have finished after one.
  const auto train = make_data(trainer.strategy().trainer() == 1 ? 256 : 128, 1), held_out = make_data(64, 50);
  ltfb_options every_four;
  every_four.every_steps = 4;
  auto ltfb = std::make_shared<LTFB<TrainerOf<Serial>, MatrixDataset<float>>>(trainer, held_out, every_four);
  trainer.add_callback(ltfb);
  const auto start = std::chrono::steady_clock::now();
  CHECK_THROWS_WITH(trainer.fit(train, 1), Contains("must play the same number of tournaments") && Contains("trainer 1"));
  CHECK(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() < 30.0);
  CHECK(ltfb->rounds() == 1);
}

TEST_CASE("The tournament log has one line per trainer and round") {
  MpiCommunicator world;
  const std::string path = "strata_ltfb_log.csv";
  if (world.rank() == 0) std::remove(path.c_str());
  auto trainer = make_trainer(TournamentOf<Serial>(world, tournament_options{1, 7}));
  const auto train = make_data(128, static_cast<std::uint64_t>(world.rank()) + 1), held_out = make_data(64, 50);
  ltfb_options options;
  options.every_steps = 2;
  options.log_path = path;
  options.perturb_learning_rate = 0.2;
  options.perturb_dropout = 0.3;
  auto ltfb = std::make_shared<LTFB<TrainerOf<Serial>, MatrixDataset<float>>>(trainer, held_out, options);
  trainer.add_callback(ltfb);
  trainer.fit(train, 1);  // 4 steps: 2 rounds
  CHECK(ltfb->rounds() == 2);
  world.barrier();
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  CHECK(line == "round,step,trainer,partner,own_score,partner_score,adopted,learning_rate,dropout");
  int lines = 0;
  while (std::getline(in, line)) ++lines;
  CHECK(lines == 2 * world.size());
  // Learning and dropout rates change only on adoption (the partner's, jittered), and stay valid.
  std::vector<double> previous(static_cast<std::size_t>(world.size()), 1e-2), previous_dropout(previous.size(), 0.1);
  for (const auto& round : ltfb->history()) {
    const std::vector<double> before_round = previous_dropout;
    for (const auto& r : round) {
      const auto k = static_cast<std::size_t>(r.trainer);
      CHECK(r.learning_rate > 0);
      CHECK((r.dropout >= 0 && r.dropout <= 0.9));
      if (!r.adopted) {
        CHECK(r.learning_rate == previous[k]);
        CHECK(r.dropout == previous_dropout[k]);
      } else {
        CHECK(r.dropout != before_round[static_cast<std::size_t>(r.partner)]);  // the partner's, jittered
      }
      previous[k] = r.learning_rate;
      previous_dropout[k] = r.dropout;
    }
  }
  world.barrier();
  if (world.rank() == 0) std::remove(path.c_str());
}

TEST_CASE("A rate adopted in a round at an epoch's end is the rate the trainer goes on with") {
  // Rounds after every epoch (every_steps 0): the trainer's epoch-end bookkeeping must not put
  // back the rate the epoch started with over the adopted, jittered one.
  MpiCommunicator world;
  auto trainer = make_trainer(TournamentOf<Serial>(world, tournament_options{1, 7}));
  const int me = trainer.strategy().trainer();
  if (me % 2 == 1) sabotage(trainer, false);  // odd trainers are clearly worse: they adopt
  const auto train = make_data(64, static_cast<std::uint64_t>(world.rank()) + 1), held_out = make_data(64, 50);
  ltfb_options options;
  options.perturb_learning_rate = 0.2;
  auto ltfb = std::make_shared<LTFB<TrainerOf<Serial>, MatrixDataset<float>>>(trainer, held_out, options);
  trainer.add_callback(ltfb);
  trainer.fit(train, 2);
  REQUIRE(ltfb->rounds() == 2);
  const tournament_record& last = ltfb->history().back()[static_cast<std::size_t>(me)];
  CHECK(trainer.learning_rate() == last.learning_rate);
  // Between rounds the rate changes only by adoption.
  if (!last.adopted) CHECK(last.learning_rate == ltfb->history().front()[static_cast<std::size_t>(me)].learning_rate);
  // An odd trainer paired with an even one adopts, so the check above saw a jittered rate.
  const tournament_record& first = ltfb->history().front()[static_cast<std::size_t>(me)];
  if (me % 2 == 1 && first.partner % 2 == 0) CHECK(first.adopted);
}

TEST_CASE("Run-time dropout rates travel with the model in snapshots and checkpoints") {
  MpiCommunicator world;
  auto trainer = make_trainer(TournamentOf<Serial>(world, tournament_options{1, 7}));
  const auto rates = [&] {
    std::vector<double> r;
    trainer.model().for_each_setting([&](const std::string& name, double& v) {
      CHECK(name.find("Dropout.rate") != std::string::npos);
      r.push_back(v);
    });
    return r;
  };
  CHECK(rates() == std::vector<double>{0.1});
  const checkpoint before = trainer.snapshot();
  trainer.model().for_each_setting([](const std::string&, double& v) { v = 0.35; });
  CHECK(rates() == std::vector<double>{0.35});
  trainer.restore(before, "the snapshot", false);
  CHECK(rates() == std::vector<double>{0.1});
  // A snapshot with an impossible rate is refused before anything changes.
  checkpoint bad = trainer.snapshot();
  for (auto& [key, value] : bad.meta)
    if (key.rfind("setting/", 0) == 0) value = "1.5";
  const auto weights_before = weight_hash(trainer);
  trainer.model().for_each_setting([](const std::string&, double& v) { v = 0.2; });
  trainer.model().parameters()[0].value->array() += 1.0f;
  const auto changed = weight_hash(trainer);
  CHECK_THROWS_WITH(trainer.restore(bad, "the bad snapshot", false), Contains("outside [0, 1)"));
  CHECK(weight_hash(trainer) == changed);
  CHECK(rates() == std::vector<double>{0.2});
  CHECK(changed != weights_before);
  CHECK_THROWS_WITH(trainer.model().for_each_setting([](const std::string&, double& v) { v = 1.5; }),
                    Contains("dropout rate must be in [0, 1), got 1.5"));
}
