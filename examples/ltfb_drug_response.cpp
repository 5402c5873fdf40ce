// ltfb_drug_response: tournament parallelism (LTFB) on the Combo drug-response model.
//
//   mpirun -np 4 ltfb_drug_response                  4 trainers of 1 rank: with tournaments,
//                                                    then the same trainers without, compared
//   mpirun -np 4 ltfb_drug_response --ranks-per-trainer 2 [--model-parallel]
//                                                    2 trainers, each data- (or model-) parallel
//
// Each trainer trains on its own shard of the training tuples and keeps a slice of that shard
// as its local tournament set; every --every-steps steps trainers meet in seeded pairs and a
// trainer adopts its partner's model only if it scores strictly better on the trainer's own
// tournament set. At the end every trainer is scored on the common validation set; the
// population's winner is the trainer with the best score on the union of all tournament sets
// (the validation set never chooses anything).
#include <boost/program_options.hpp>

#include <strata/data/prepare.hpp>
#include <strata/data/split.hpp>
#include <strata/data/synthetic_drug_response.hpp>
#include <strata/models/combo.hpp>
#include <strata/parallel/data_parallel.hpp>
#include <strata/parallel/model_parallel.hpp>
#include <strata/parallel/mpi_communicator.hpp>
#include <strata/parallel/tournament.hpp>
#include <strata/train/callbacks.hpp>
#include <strata/train/ltfb.hpp>
#include <strata/train/trainer.hpp>

#include "example_support.hpp"


#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <iomanip>
#include <iostream>
#include <numeric>

namespace po = boost::program_options;
using namespace strata;

namespace {

struct settings {
  synthetic_drug_response_options synthetic;
  Index train_samples = 16000, validation_samples = 4000, epochs = 12, batch = 128, width = 256, threads = 0;
  // Population-based exploration on adoption (lr and dropout jittered by exp(0.3 N(0,1))): in 5
  // seeds it made the winner beat the best independent trainer every time, 3 of 5 without.
  double tournament_fraction = 0.1, lr = 1e-3, dropout = 0.1, perturb_lr = 0.3, perturb_dropout = 0.3;
  std::uint64_t every_steps = 25, warmup_steps = 50, seed = 1;
  int ranks_per_trainer = 1;
  bool model_parallel = false, no_tournament = false, no_compare = false, identical_seeds = false;
  std::string metric = "loss", log, checkpoint, resume;
};

/// What one run of the population reached: per trainer, its final score on the union of all
/// tournament sets and its validation MSE (every rank holds every trainer's figures).
struct population_result {
  std::vector<double> tournament_score, validation_mse;
  std::vector<std::uint64_t> weights_checksums;  ///< per world rank
  std::uint64_t steps = 0;
  double seconds = 0;
  int winner() const {
    const auto it = std::min_element(tournament_score.begin(), tournament_score.end(), [](double a, double b) {
      return std::isfinite(a) && (!std::isfinite(b) || a < b);
    });
    return static_cast<int>(it - tournament_score.begin());
  }
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/// Trains the population once, with or without tournaments.
template <class Inner>
population_result train_population(const settings& s, const prepared_drug_response<float>& prepared, bool tournaments,
                                   std::function<Inner(MpiCommunicator)> make_inner) {
  using Strategy = Tournament<Inner, MpiCommunicator>;
  using TrainerT = Trainer<Combo, MSE, Adam, Strategy>;
  tournament_options topts;
  topts.ranks_per_trainer = s.ranks_per_trainer;
  topts.seed = s.seed;
  topts.identical_seeds = s.identical_seeds;
  Strategy strategy(MpiCommunicator{}, topts, make_inner);
  const int trainer = strategy.trainer(), trainers = strategy.trainers();

  // This trainer's shard of the training tuples (all shards the same size, so every trainer
  // takes the same number of steps and plays the same number of rounds), minus its tournament set.
  std::vector<Index> all(static_cast<std::size_t>(prepared.train.size()));
  std::iota(all.begin(), all.end(), Index{0});
  // The union of all trainers' tournament sets picks the population's winner at the end: held-out
  // training-side data that every trainer is scored on alike (scores on different local sets
  // are not comparable).
  split local;
  std::vector<Index> all_tournament_sets;
  for (int k = 0; k < trainers; ++k) {
    std::vector<Index> rows = shard(all, k, trainers);
    rows.resize(all.size() / static_cast<std::size_t>(trainers));
    split part = hold_out(rows, s.tournament_fraction, s.seed + 17 + static_cast<std::uint64_t>(k));
    all_tournament_sets.insert(all_tournament_sets.end(), part.validation.begin(), part.validation.end());
    if (k == trainer) local = std::move(part);
  }
  const DrugResponseDataset<float> train = prepared.train.subset(local.train), tournament_set = prepared.train.subset(local.validation);
  const DrugResponseDataset<float> selection_set = prepared.train.subset(all_tournament_sets);

  const combo_options shape{prepared.train.data().cells.width(), prepared.train.data().drugs.width(), s.width, s.dropout};
  Model<Combo> model(make_combo(shape));
  row_partition* partition = nullptr;
  if constexpr (std::is_same_v<Inner, ModelParallel<MpiCommunicator>>) partition = strategy.inner().partition();
  model.build(train.input_width(), strategy.trainer_seed(s.seed), partition);
  trainer_options options;
  options.batch_size = s.batch;
  options.seed = strategy.trainer_seed(s.seed + 1);
  options.warmup_steps = s.warmup_steps;
  TrainerT t(std::move(model), MSE{}, Adam{s.lr}, std::move(strategy), options);

  std::cout << (tournaments ? "with tournaments" : "without tournaments") << ": " << trainers << " trainers x "
            << s.ranks_per_trainer << " rank(s), " << train.size() << " training and " << tournament_set.size()
            << " tournament tuples each; trainer 0's progress:\n";
  t.add_callback(std::make_shared<ProgressPrinter>(std::cout));
  std::shared_ptr<LTFB<TrainerT, DrugResponseDataset<float>>> ltfb;
  if (tournaments) {
    ltfb_options lo;
    lo.every_steps = s.every_steps;
    lo.metric = s.metric;
    lo.perturb_learning_rate = s.perturb_lr;
    lo.perturb_dropout = s.perturb_dropout;
    lo.log_path = s.log;
    lo.checkpoint_path = s.checkpoint;
    ltfb = std::make_shared<LTFB<TrainerT, DrugResponseDataset<float>>>(t, tournament_set, lo);
    if (!s.resume.empty()) {
      ltfb->resume(s.resume);
      std::cout << "resumed from " << s.resume << ".trainer*: " << ltfb->rounds() << " tournaments played, step " << t.step()
                << "\n";
    }
    ltfb->on_round([&](const std::vector<tournament_record>& round) {
      std::vector<double> after;
      std::vector<int> adopted;
      for (const auto& r : round) {
        after.push_back(r.adopted ? r.partner_score : r.own_score);
        if (r.adopted) adopted.push_back(r.trainer);
      }
      const double best = higher_is_better(s.metric) ? *std::max_element(after.begin(), after.end())
                                                     : *std::min_element(after.begin(), after.end());
      std::cout << "tournament " << round[0].round + 1 << " (step " << round[0].step << "): best " << std::setprecision(4)
                << best << ", median " << median(after) << " " << s.metric;
      if (adopted.empty()) std::cout << "; no trainer adopted";
      else {
        std::cout << "; adopted by trainer";
        for (const int a : adopted) std::cout << " " << a;
      }
      std::cout << "\n" << std::flush;
    });
    t.add_callback(ltfb);
  }
  const auto start = std::chrono::steady_clock::now();
  t.fit(train, s.epochs);
  population_result result;
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  result.steps = t.step();
  // Every rank's weights (a model-parallel trainer's ranks hold different rows), to compare runs.
  auto& world = t.strategy().world();
  const std::uint64_t checksum = weights_checksum(t.model(), t.strategy());
  result.weights_checksums.resize(static_cast<std::size_t>(world.size()));
  world.all_gather(&checksum, result.weights_checksums.data(), std::vector<std::size_t>(static_cast<std::size_t>(world.size()), 1));

  // Every trainer's figures on every rank: one value per world rank, read at trainer roots.
  const evaluation selection = t.evaluate(selection_set, false), common = t.evaluate(prepared.validation, false);
  const double figures[2] = {s.metric == "loss" ? selection.loss : selection.metrics.at(s.metric), common.metrics.at("mse")};
  std::vector<double> gathered(2 * static_cast<std::size_t>(world.size()));
  world.all_gather(figures, gathered.data(), std::vector<std::size_t>(static_cast<std::size_t>(world.size()), 2));
  for (int k = 0; k < trainers; ++k) {
    const std::size_t root = 2 * static_cast<std::size_t>(k * s.ranks_per_trainer);
    // Higher-is-better metrics are negated so that the winner is always the smallest score.
    result.tournament_score.push_back(higher_is_better(s.metric) ? -gathered[root] : gathered[root]);
    result.validation_mse.push_back(gathered[root + 1]);
  }
  return result;
}

template <class Inner>
int run_population(const settings& s, const prepared_drug_response<float>& prepared, std::function<Inner(MpiCommunicator)> make_inner) {
  std::vector<std::pair<std::string, population_result>> runs;
  if (!s.no_tournament) runs.emplace_back("LTFB", train_population<Inner>(s, prepared, true, make_inner));
  if (s.no_tournament || !s.no_compare) runs.emplace_back("independent", train_population<Inner>(s, prepared, false, make_inner));

  const std::size_t trainers = runs[0].second.validation_mse.size();
  std::cout << "\nvalidation MSE on the common set (" << prepared.validation.size() << " tuples) after "
            << runs[0].second.steps << " steps per trainer\n"
            << std::setw(8) << "trainer";
  for (const auto& [name, r] : runs) std::cout << std::setw(14) << name;
  std::cout << "\n" << std::fixed << std::setprecision(5);
  for (std::size_t k = 0; k < trainers; ++k) {
    std::cout << std::setw(8) << k;
    for (const auto& [name, r] : runs) std::cout << std::setw(14) << r.validation_mse[k];
    std::cout << "\n";
  }
  for (const auto& [name, r] : runs)
    for (std::size_t rank = 0; rank < r.weights_checksums.size(); ++rank)
      std::cout << name << " rank " << rank << " (trainer " << rank / static_cast<std::size_t>(s.ranks_per_trainer)
                << ") weights fnv1a64: " << std::hex << r.weights_checksums[rank] << std::dec << "\n";
  for (const auto& [name, r] : runs) {
    const int w = r.winner();
    std::cout << name << ": winner (best on all tournament sets) trainer " << w << ", validation MSE "
              << r.validation_mse[static_cast<std::size_t>(w)] << "; best of all "
              << *std::min_element(r.validation_mse.begin(), r.validation_mse.end()) << ", median " << median(r.validation_mse)
              << "; " << std::setprecision(1) << r.seconds << " s" << std::setprecision(5) << "\n";
  }
  if (runs.size() == 2) {
    const double winner = runs[0].second.validation_mse[static_cast<std::size_t>(runs[0].second.winner())];
    const double best_independent = *std::min_element(runs[1].second.validation_mse.begin(), runs[1].second.validation_mse.end());
    std::cout << "LTFB winner vs best independent trainer: " << winner << " vs " << best_independent << " ("
              << (winner <= best_independent ? "at least as good" : "worse") << ")\n";
  }
  std::cout << std::defaultfloat;
  return 0;
}

void check_options(const settings& s) {
  for (const auto& [option, value] : {std::pair<const char*, double>{"epochs", static_cast<double>(s.epochs)},
                                      {"batch", static_cast<double>(s.batch)},
                                      {"width", static_cast<double>(s.width)},
                                      {"lr", s.lr},
                                      {"ranks-per-trainer", s.ranks_per_trainer},
                                      {"train-samples", static_cast<double>(s.train_samples)},
                                      {"validation-samples", static_cast<double>(s.validation_samples)}})
    examples::require_positive(option, value);
  if (!(s.tournament_fraction > 0 && s.tournament_fraction < 1))
    throw config_error(detail::concat("--tournament-fraction must be in (0, 1), got ", s.tournament_fraction));
  if (!(s.dropout >= 0 && s.dropout < 1)) throw config_error(detail::concat("--dropout must be in [0, 1), got ", s.dropout));
  if (s.perturb_lr < 0 || s.perturb_dropout < 0) throw config_error("--perturb-lr and --perturb-dropout must not be negative");
  if (s.no_tournament && !s.log.empty()) throw config_error("--log records tournaments; --no-tournament plays none");
  if (s.no_tournament && !(s.checkpoint.empty() && s.resume.empty()))
    throw config_error("--checkpoint and --resume are for the tournament run; --no-tournament plays none");
  higher_is_better(s.metric);  // rejects an unknown metric now, not at the first round
}

int run(settings s) {
  check_options(s);
  MpiCommunicator world;
  if (world.size() % s.ranks_per_trainer != 0)
    throw config_error(detail::concat(world.size(), " ranks cannot form trainers of ", s.ranks_per_trainer, " ranks"));
  s.threads = examples::threads_per_rank(s.threads, true);
  examples::use_threads(s.threads);
  std::cout << "ltfb_drug_response: " << world.size() / s.ranks_per_trainer << " trainers of " << s.ranks_per_trainer
            << " rank(s) (" << (s.model_parallel ? "model" : "data") << "-parallel inside), Combo width " << s.width
            << ", batch " << s.batch << ", " << s.epochs << " epochs, a tournament every " << s.every_steps
            << " steps on " << s.metric << ", " << s.threads << " thread(s) per rank\n";

  auto generated = generate_drug_response<float>(s.synthetic);
  split parts = make_split(generated.data, split_scheme::random, 0.2, s.seed);
  parts.train = subsample(parts.train, s.train_samples, s.seed + 1);
  parts.validation = subsample(parts.validation, s.validation_samples, s.seed + 2);
  const auto prepared = prepare_drug_response(std::move(generated.data), parts);
  std::cout << "data: synthetic, " << parts.train.size() << " training tuples shared out to the trainers, "
            << parts.validation.size() << " common validation tuples; best achievable R2 " << generated.ceiling << "\n";

  if (s.model_parallel) {
    using MP = ModelParallel<MpiCommunicator>;
    return run_population<MP>(s, prepared, [](MpiCommunicator c) { return MP(std::move(c)); });
  }
  using DP = DataParallel<MpiCommunicator>;
  return run_population<DP>(s, prepared, [](MpiCommunicator c) { return DP(std::move(c)); });
}

int parse_and_run(int argc, char** argv) {
  settings s;
  po::options_description population("Population and tournaments"), training("Model, data and training");
  population.add_options()
      ("ranks-per-trainer", examples::option(s.ranks_per_trainer), "MPI ranks of each trainer (trainers = ranks / this)")
      ("model-parallel", po::bool_switch(&s.model_parallel), "split each trainer's dense layers over its ranks (default: data-parallel trainers)")
      ("every-steps", examples::option(s.every_steps), "a tournament every this many steps (0: after every epoch)")
      ("tournament-fraction", examples::option(s.tournament_fraction), "share of each trainer's tuples kept as its tournament set")
      ("metric", examples::option(s.metric), "what tournaments compare: loss, mse, mae, rmse, r2, pearson, spearman")
      ("perturb-lr", examples::option(s.perturb_lr), "on adoption, jitter the learning rate by exp(sigma N(0,1)); 0: off")
      ("perturb-dropout", examples::option(s.perturb_dropout), "on adoption, jitter every dropout rate likewise (kept <= 0.9); 0: off")
      ("identical-seeds", po::bool_switch(&s.identical_seeds), "give every trainer the same seeds (default: each its own)")
      ("no-tournament", po::bool_switch(&s.no_tournament), "train the trainers independently only")
      ("no-compare", po::bool_switch(&s.no_compare), "skip the comparison run without tournaments")
      ("log", po::value(&s.log), "CSV of every trainer's side of every tournament")
      ("checkpoint", po::value(&s.checkpoint), "after every tournament, each trainer writes its state to PATH.trainer<k> (the previous round's kept as .prev)")
      ("resume", po::value(&s.resume), "continue the tournament run from the checkpoints under PATH (same options and rank count; the comparison run starts over)");
  training.add_options()
      ("train-samples", examples::option(s.train_samples), "training tuples shared out to the trainers")
      ("validation-samples", examples::option(s.validation_samples), "tuples of the common validation set")
      ("tuples", examples::option(s.synthetic.tuples), "synthetic (cell, drug, drug) tuples to draw from")
      ("epochs", examples::option(s.epochs), "epochs per trainer")
      ("batch", examples::option(s.batch), "minibatch size per trainer")
      ("lr", examples::option(s.lr), "Adam learning rate")
      ("warmup-steps", examples::option(s.warmup_steps), "linear learning-rate warmup")
      ("width", examples::option(s.width), "width of every hidden layer of the Combo model")
      ("dropout", examples::option(s.dropout), "dropout rate")
      ("seed", examples::option(s.seed), "seed of data, split, pairings and (per trainer) weights")
      ("threads", examples::option(s.threads), "threads per rank (0: cores / ranks on this node)")
      ("help,h", "show this help");
  po::options_description all(
      "ltfb_drug_response: tournament parallelism (LTFB) on the Combo drug-response model, synthetic data.\n"
      "Run under mpirun: mpirun -np 4 ltfb_drug_response (4 trainers; about 70 s on 2 cores).\n");
  all.add(population).add(training);
  if (!examples::parse_options(po::command_line_parser(argc, argv).options(all).run(), all)) return 0;
  s.synthetic.seed = s.seed;
  return run(s);
}

}  // namespace

int main(int argc, char** argv) {
  return examples::main_of("ltfb_drug_response", argc, argv, [&] { return parse_and_run(argc, argv); });
}
