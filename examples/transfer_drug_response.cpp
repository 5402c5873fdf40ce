// transfer_drug_response: ensemble transfer learning across drug-screening studies (Zhu et al.,
// Sci. Rep. 10:18040, 2020), with its two baselines, on single-drug response (AUC).
//
//   transfer_drug_response                          the default synthetic studies, CTRP -> CCLE
//   transfer_drug_response --studies DIR            Uno-layout files (cell_features.tsv,
//                                                   drug_features.tsv, combined_single_response_agg)
//   transfer_drug_response --write-studies DIR      write the synthetic studies as such files, stop
//   mpirun -n 4 transfer_drug_response              members trained side by side on 4 ranks
//   mpirun -n 4 transfer_drug_response --ranks-per-member 2
//                                                   2 members at a time, each data-parallel on 2 ranks
//
// For every network (two-subnetwork, concatenated) and target partition (random pairs,
// cell-blind, drug-blind) it compares, over the target's test folds:
//   SCV  one model trained on the target alone
//   ECV  T-1 models trained on the target alone, averaged
//   ETL  K models trained on the source study's folds, each refined on the target, averaged
// and prints the table of R², MAE, Pearson and Spearman (mean +- std over test folds), also
// written as CSV and JSON (--out). With --work-dir every finished member is kept, and a rerun
// (after a kill, say) trains only what is missing. The same seeds give the same table on any
// number of ranks.

#include <boost/program_options.hpp>

#include <strata/data/study_files.hpp>
#include <strata/data/synthetic_studies.hpp>
#include <strata/workflows/ensemble_transfer.hpp>

#include "example_support.hpp"
#include "study_support.hpp"

#ifdef STRATA_EXAMPLE_MPI
#include <strata/parallel/mpi_communicator.hpp>
#endif

#include <algorithm>
#include <iomanip>
#include <iostream>
#include <map>
#include <string>
#include <thread>

namespace po = boost::program_options;
using namespace strata;

namespace {

struct settings {
  ensemble_transfer_options study;
  synthetic_studies_options synthetic;
  std::string studies_dir, write_studies, schemes = "random,cell,drug", networks = "two-subnetwork,concatenated",
                                          source_models, thaw, refine_groups, out = "transfer_table";
  Index threads = 0;
  bool quick = false, skip_unknown_ids = false;
};

/// A small setting that runs in about a minute: narrow features, small studies, 3 x 3 folds.
void make_quick(settings& s) {
  s.synthetic.cells = 160;
  s.synthetic.drugs = 120;
  s.synthetic.cell_width = 24;
  s.synthetic.drug_width = 32;
  s.synthetic.studies = {{"CTRP", 0, 140, 0, 100, 9000, 1.6, 0.0, 0.85},
                         {"GDSC", 40, 120, 60, 60, 4000, 1.3, -0.4, 0.80},
                         {"CCLE", 20, 100, 92, 16, 1200, 2.0, 0.5, 0.80}};
  s.study.source_folds = 3;
  s.study.target_folds = 3;
  s.study.width = 32;
  s.study.source_fit.max_epochs = 6;
  s.study.target_fit.max_epochs = 15;
  s.study.refine_fit.max_epochs = 15;
}

/// "EPOCH:PATTERN,..." as thaw stages.
std::vector<thaw_stage> parse_thaw(const std::string& text) {
  std::vector<thaw_stage> stages;
  for (const std::string& item : examples::comma_list(text)) {
    const auto colon = item.find(':');
    if (colon == std::string::npos || colon == 0)
      throw config_error("--thaw: '" + item + "' is not EPOCH:LAYER-PATTERN (e.g. 2:0:Fork)");
    stages.push_back({static_cast<Index>(std::stol(item.substr(0, colon))), item.substr(colon + 1)});
  }
  return stages;
}

/// "LAYER=SCALE,..." as refinement groups (a learning-rate multiplier per layer path; 0 freezes).
std::vector<std::pair<std::string, parameter_group>> parse_groups(const std::string& text) {
  std::vector<std::pair<std::string, parameter_group>> groups;
  for (const std::string& item : examples::comma_list(text)) {
    const auto equals = item.rfind('=');
    if (equals == std::string::npos || equals == 0 || equals + 1 == item.size())
      throw config_error("--refine-groups: '" + item + "' is not LAYER=SCALE (e.g. 0:Fork=0.1)");
    parameter_group g;
    if (!detail::parse_finite(item.substr(equals + 1), g.lr_scale) || g.lr_scale < 0.0)
      throw config_error("--refine-groups: '" + item.substr(equals + 1) + "' is not a rate multiplier >= 0");
    groups.emplace_back(item.substr(0, equals), g);
  }
  return groups;
}

int run(settings& s) {
#ifdef STRATA_EXAMPLE_MPI
  MpiCommunicator world;
#else
  SerialCommunicator world;
#endif
  // Members run side by side, each on one thread: the numbers then do not depend on how many
  // ranks or threads share the work (ensemble_transfer_options::concurrent_members).
  const Index threads = examples::threads_per_rank(s.threads, world.size() > 1);
  s.study.concurrent_members = threads > 0 ? threads : std::max<Index>(1, static_cast<Index>(std::thread::hardware_concurrency()));
  examples::use_threads(1);
  if (!s.write_studies.empty()) {
    if (world.rank() == 0) write_study_files(s.write_studies, generate_studies<float>(s.synthetic).data);
    std::cout << "wrote the synthetic studies to " << s.write_studies << "\n";
    return 0;
  }
  s.study.schemes.clear();
  for (const auto& name : examples::comma_list(s.schemes)) s.study.schemes.push_back(parse_split_scheme(name));
  s.study.networks.clear();
  for (const auto& name : examples::comma_list(s.networks)) s.study.networks.push_back(parse_single_drug_network(name));
  s.study.source_model_files = examples::comma_list(s.source_models);
  s.study.refine_fit.thaw = parse_thaw(s.thaw);
  s.study.refine_groups = parse_groups(s.refine_groups);

  const multi_study_data<float> data = examples::load_studies(s.studies_dir, s.synthetic, s.skip_unknown_ids);
  EnsembleTransferStudy<float> study(data, s.study);
  const auto& o = study.options();
  std::cout << "source " << o.source << " (" << study.source().tuples.size() << " pairs) -> target " << o.target << " ("
            << study.target().tuples.size() << " pairs); they share " << study.overlap().cells << " cells and "
            << study.overlap().drugs << " drugs\n"
            << study.members() << " members on " << world.size() << (world.size() == 1 ? " rank" : " ranks")
            << (o.ranks_per_member > 1 ? detail::concat(", each member data-parallel on ", o.ranks_per_member, " ranks")
                                       : detail::concat(", ", o.concurrent_members, " at a time on each"))
            << (o.work_directory.empty() ? "" : ", finished members kept in " + o.work_directory) << "\n";
  const auto result = study.run(world, [](const std::string& line) { std::cout << "  " << line << "\n" << std::flush; });

  std::cout << "\n" << transfer_table_text(result);
  // What the paper's comparisons ask, fold by fold (every method and network sees the same
  // folds): does ETL beat each baseline, and the two-subnetwork network the concatenated one?
  const auto line = [](const paired_difference& d) {
    return detail::concat(std::showpos, std::fixed, std::setprecision(4), d.mean, std::noshowpos, " +- ", d.std, " (better in ",
                          d.better, "/", d.folds, " folds)");
  };
  std::cout << "\nR2 differences per test fold, mean +- std:\n";
  for (const auto sc : o.schemes) {
    for (const auto n : o.networks)
      for (const auto baseline : {transfer_method::scv, transfer_method::ecv})
        std::cout << "  " << std::left << std::setw(11) << to_string(sc) << " " << std::setw(15) << to_string(n) << " ETL - "
                  << to_string(baseline) << ": " << line(compare_folds(result, sc, n, transfer_method::etl, n, baseline)) << "\n";
    if (o.networks.size() == 2)
      for (const auto m : {transfer_method::scv, transfer_method::ecv, transfer_method::etl})
        std::cout << "  " << std::left << std::setw(11) << to_string(sc) << " " << to_string(m)
                  << ": two-subnetwork - concatenated: "
                  << line(compare_folds(result, sc, single_drug_network::two_subnetwork, m, single_drug_network::concatenated, m))
                  << "\n";
  }
  if (world.rank() == 0 && !s.out.empty()) {
    write_transfer_csv(s.out + ".csv", result);
    write_transfer_json(s.out + ".json", result);
    std::cout << "wrote " << s.out << ".csv, " << s.out << "_folds.csv and " << s.out << ".json\n";
  }
  std::cout << "wall time " << result.seconds << " s on " << world.size() << (world.size() == 1 ? " rank" : " ranks")
            << (result.members_resumed > 0 ? detail::concat(" (", result.members_resumed, " members kept on rank 0)") : "")
            << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return examples::main_of("transfer_drug_response", argc, argv, [&]() -> int {
    settings s;
    // --quick changes the defaults, so it is seen first: options given beside it still win.
    for (int i = 1; i < argc; ++i)
      if (std::string(argv[i]) == "--quick") make_quick(s);
    auto& o = s.study;
    po::options_description data("Data"), study("Study"), training("Training"), output("Output and running");
    examples::add_study_data_options(data, s.studies_dir, s.skip_unknown_ids, s.synthetic.seed);
    data.add_options()
        ("write-studies", po::value(&s.write_studies), "write the synthetic studies to DIR as Uno-layout files and stop")
        ("quick", po::bool_switch(&s.quick), "a small setting (narrow features, 3 x 3 folds) that runs in about a minute");
    study.add_options()
        ("source", examples::option(o.source), "the study source models train on")
        ("target", examples::option(o.target), "the study they are refined on and tested against")
        ("source-folds", examples::option(o.source_folds), "K: source models (rotating folds of the source)")
        ("target-folds", examples::option(o.target_folds), "T: test folds of the target (ECV has T-1 members)")
        ("schemes", examples::option(s.schemes), "target partitions: random, cell, drug (comma-separated)")
        ("networks", examples::option(s.networks), "two-subnetwork, concatenated (comma-separated)")
        ("source-models", po::value(&s.source_models), "refine these model files (comma-separated; one network) instead of training source models")
        ("seed", examples::option(o.seed), "seed of folds, initialisations and shuffles");
    training.add_options()
        ("width", examples::option(o.width), "hidden width of both networks")
        ("dropout", examples::option(o.dropout), "dropout after every hidden layer")
        ("batch", examples::option(o.batch_size), "minibatch size")
        ("lr", examples::option(o.learning_rate), "Adam's rate from scratch (source models, SCV, ECV)")
        ("refine-lr", examples::option(o.refine_learning_rate), "Adam's rate when refining (ETL)")
        ("source-epochs", examples::option(o.source_fit.max_epochs), "most epochs of a source model")
        ("epochs", examples::option(o.target_fit.max_epochs), "most epochs of an SCV/ECV member")
        ("refine-epochs", examples::option(o.refine_fit.max_epochs), "most epochs of a refinement")
        ("patience", examples::option(o.target_fit.patience), "early stopping: epochs without improvement (SCV, ECV)")
        ("refine-patience", examples::option(o.refine_fit.patience), "the same for refinements")
        ("thaw", po::value(&s.thaw), "gradual unfreezing when refining: EPOCH:LAYER,... (e.g. 0:2:Dense,2:1:Repeat,4:0:Fork): "
                                     "every listed layer starts frozen and thaws at its epoch")
        ("refine-groups", po::value(&s.refine_groups), "learning-rate multipliers when refining: LAYER=SCALE,... "
                                                       "(e.g. 0:Fork=0.1 trains the encoders at a tenth of the rate; 0 freezes)");
    output.add_options()
        ("out", examples::option(s.out), "write OUT.csv, OUT_folds.csv and OUT.json")
        ("work-dir", po::value(&o.work_directory), "keep finished members here; a rerun skips them")
        ("ranks-per-member", examples::option(o.ranks_per_member), "ranks that train one member together, data-parallel "
                                                                    "(the table is the same for any number of such groups)")
        ("threads", examples::option(s.threads), "members trained at once per process, one thread each (0: all cores, shared among ranks)")
        ("help", "show this help");
    po::options_description all("transfer_drug_response: ensemble transfer learning (ETL) against SCV and ECV");
    all.add(data).add(study).add(training).add(output);
    if (!examples::parse_options(po::parse_command_line(argc, argv, all), all)) return 0;
    return run(s);
  });
}
