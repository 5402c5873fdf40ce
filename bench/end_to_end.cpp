// End-to-end throughput as users meet it, one JSON line per run, for bench/compare to set beside
// the PyTorch reference (bench/reference/end_to_end.py prints the same fields):
//   combo-train          the Combo model trained by the Trainer (MSE, Adam, batch 256, shuffled
//                        minibatches gathered from synthetic data held in memory)
//   combo-infer          Combo predictions, evaluation mode, batch 4,096
//   descriptor-infer     docking descriptor MLP (1,613 -> ... -> 1) predictions, batch 8,192
//   fingerprint-infer    docking fingerprint MLP (2,048 Morgan-like bits, ~3% set, sparse first
//                        layer) predictions
//   docking-train        the descriptor MLP trained by the Trainer (MSE, Adam, batch 256)
//   fingerprint-train    the fingerprint MLP (sparse first layer) trained the same way
// Warm-up steps are excluded; the figure is the median over windows of steps (min and max too).
// Threads: --threads (Eigen, OpenMP and, in BLAS builds, OpenBLAS). Inference tasks take
// --precision fp32|bf16|int8 where oneDNN is found: the Dense layers then run on oneDNN in that
// precision (int8 calibrated on 8,192 other samples); "default" is the model's own products.
// --products-only times the task's dense products alone on the build's GEMM engine (the shapes of
// one step, random operands): the most any program on that engine could reach, which bench/compare
// sets beside PyTorch's rate.
#include <strata/strata.hpp>
#include <strata/data/synthetic_library.hpp>
#include <strata/models/combo.hpp>
#include <strata/models/docking.hpp>
#include <strata/data/dataset.hpp>
#include <strata/train/trainer.hpp>

#ifdef STRATA_BENCH_ONEDNN
#include <strata/inference/low_precision.hpp>
#endif

#include "../examples/example_support.hpp"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <iomanip>
#include <sstream>
#include <string>
#include <vector>

using namespace strata;
namespace po = boost::program_options;

namespace {

using clock_type = std::chrono::steady_clock;

struct settings {
  std::string task = "combo-train";
  Index batch = 0;  // 0: the task's default
  Index threads = 1;
  Index warmup = 0, windows = 7, steps = 0;  // 0: the task's default
  std::string precision = "default";         // inference: default, or fp32/bf16/int8 on oneDNN
  bool products_only = false;                // time the model's dense products alone (time_products)
};

/// Multiply-adds of a stack of dense layers of these widths, per sample.
double dense_macs(const std::vector<Index>& widths) {
  double macs = 0;
  for (std::size_t k = 1; k < widths.size(); ++k) macs += static_cast<double>(widths[k - 1] * widths[k]);
  return macs;
}

/// One stack of a model's dense layers: its widths (input first), how many times it runs per
/// sample (the shared drug encoder twice, as one batch of twice the columns) and whether its
/// first layer reads the model's input (then no input gradient is formed for that layer).
struct dense_stack {
  std::vector<Index> widths;
  Index applications = 1;
  bool reads_input = true;
};

/// Useful FLOP per sample: forward 2 MAC; training adds the weight gradient (2 MAC) and the input
/// gradient (2 MAC) of every layer except those reading the input, which need none.
struct flop_count {
  double forward = 0, first_layers = 0;
  explicit flop_count(const std::vector<dense_stack>& stacks) {
    for (const dense_stack& d : stacks) {
      forward += 2 * static_cast<double>(d.applications) * dense_macs(d.widths);
      if (d.reads_input) first_layers += 2 * static_cast<double>(d.applications * d.widths[0] * d.widths[1]);
    }
  }
  double per_sample(bool training) const { return training ? 3 * forward - first_layers : forward; }
};

std::vector<dense_stack> combo_stacks(const combo_options& o) {
  const Index w = o.width;
  return {{{o.cell_width, w, w, w}, 1, true}, {{o.drug_width, w, w, w}, 2, true}, {{3 * w, w, w, w, 1}, 1, false}};
}

std::vector<dense_stack> descriptor_stacks() { return {{{1613, 250, 125, 60, 30, 1}, 1, true}}; }

/// The fingerprint MLP as if its first layer were dense: what the sparse first layer avoids is the
/// point, so its rate is counted in the dense-equivalent FLOP.
std::vector<dense_stack> fingerprint_dense_equivalent() { return {{{2048, 1024, 256, 64, 16, 1}, 1, true}}; }

/// Rates (samples/s) of consecutive windows of `steps` steps each, from the time stamps taken after
/// every step (stamps[0]: before the first timed step).
std::vector<double> window_rates(const std::vector<clock_type::time_point>& stamps, Index steps, Index batch) {
  std::vector<double> rates;
  for (std::size_t end = static_cast<std::size_t>(steps); end < stamps.size(); end += static_cast<std::size_t>(steps)) {
    const double seconds = std::chrono::duration<double>(stamps[end] - stamps[end - static_cast<std::size_t>(steps)]).count();
    rates.push_back(static_cast<double>(steps * batch) / seconds);
  }
  return rates;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::string gemm_engine() {
#if defined(STRATA_GEMM_ONEDNN)
  return "onednn";
#elif defined(EIGEN_USE_BLAS)
  const char* core = std::getenv("OPENBLAS_CORETYPE");
  return std::string("openblas") + (core != nullptr ? std::string(" (OPENBLAS_CORETYPE=") + core + ")" : std::string(""));
#else
  return "eigen";
#endif
}

void print_json(const settings& s, const std::vector<double>& rates, double flop_per_sample) {
  const double rate = median(rates);
  std::ostringstream out;
  out << std::setprecision(6) << "{\"framework\": \"strata\", \"task\": \"" << s.task << "\", \"threads\": " << s.threads
      << ", \"batch\": " << s.batch << ", \"samples_per_s\": " << rate
      << ", \"min\": " << *std::min_element(rates.begin(), rates.end())
      << ", \"max\": " << *std::max_element(rates.begin(), rates.end()) << ", \"windows\": " << rates.size()
      << ", \"gflop_per_s\": " << rate * flop_per_sample * 1e-9 << ", \"mflop_per_sample\": " << flop_per_sample * 1e-6
      << ", \"gemm\": \"" << (s.precision == "default" ? gemm_engine() : "onednn " + s.precision) << "\""
      << (s.products_only ? ", \"products_only\": true" : "") << "}";
  std::cout << out.str() << std::endl;
}

/// Time stamps after every minibatch the trainer takes.
class step_clock : public callback {
 public:
  explicit step_clock(std::vector<clock_type::time_point>& stamps) : stamps_(stamps) {}
  void on_batch_end(const batch_progress&) override { stamps_.push_back(clock_type::now()); }

 private:
  std::vector<clock_type::time_point>& stamps_;
};

/// Trains `spec` on `data` with the Trainer and returns the window rates.
template <class Spec>
std::vector<double> time_training(Spec spec, MatrixDataset<float> data, const settings& s) {
  Model<Spec> model(std::move(spec));
  model.build(data.input_width(), 1);
  trainer_options options;
  options.batch_size = s.batch;
  options.prefetch = false;  // no helper thread: the thread count is what --threads says
  Trainer<Spec> trainer(std::move(model), MSE{}, Adam{}, Serial{}, options);
  std::vector<clock_type::time_point> stamps;
  trainer.add_callback(std::make_unique<step_clock>(stamps));
  const Index needed = s.warmup + s.windows * s.steps, per_epoch = data.size() / s.batch;
  trainer.fit(data, (needed + per_epoch - 1) / per_epoch);
  stamps.resize(static_cast<std::size_t>(needed));  // whole epochs may run past the last window
  stamps.erase(stamps.begin(), stamps.begin() + s.warmup - 1);  // keep the stamp that starts the first window
  return window_rates(stamps, s.steps, s.batch);
}

/// Evaluation-mode forward passes of `spec` over `x` (one batch, repeated); returns the window
/// rates. `calibration_sample`: what int8 calibrates on.
template <class Spec>
std::vector<double> time_inference(Spec spec, const matrix_f& x, const settings& s, const matrix_f& calibration_sample) {
  Model<Spec> model(std::move(spec));
  model.build(x.rows(), 1);
#ifdef STRATA_BENCH_ONEDNN
  std::unique_ptr<OnednnInference> kernels;
  if (s.precision != "default") {
    const precision p = parse_precision(s.precision);
    if (const std::string why = precision_unavailable(p); !why.empty())
      throw config_error("--precision " + s.precision + ": " + why);  // no figure rather than an fp32 one labelled so
    kernels = std::make_unique<OnednnInference>(
        model, p, p == precision::int8 ? calibrate_dense_inputs(model, calibration_sample) : dense_calibration{});
    model.set_dense_kernels(kernels.get());
  }
#else
  (void)calibration_sample;
  if (s.precision != "default") throw config_error("--precision needs oneDNN (apt-get install libdnnl-dev, then rebuild)");
#endif
  pass_info eval;
  eval.phase = mode::eval;
  std::vector<clock_type::time_point> stamps;
  for (Index i = 0; i < s.warmup + s.windows * s.steps; ++i) {
    if (i >= s.warmup) stamps.push_back(clock_type::now());
    model.forward(x, eval);
  }
  stamps.push_back(clock_type::now());
  return window_rates(stamps, s.steps, s.batch);
}

/// `rows x cols` standard normal values (synthetic features; only their shape matters for speed).
matrix_f normal_matrix(Index rows, Index cols, std::uint64_t seed) {
  const random_stream rng(seed, purpose::user);
  matrix_f m(rows, cols);
  for (Index i = 0; i < m.size(); ++i) m.data()[i] = static_cast<float>(rng.normal(static_cast<std::uint64_t>(i)));
  return m;
}

/// `count` molecules of the synthetic library from `first` on, as features.
matrix_f library_features(molecule_features f, Index count, std::uint64_t first = 0) {
  const SyntheticLibrary library;
  const SyntheticLibraryDataset<float> data(library, f, first, static_cast<std::uint64_t>(count));
  std::vector<Index> rows(static_cast<std::size_t>(count));
  for (Index j = 0; j < count; ++j) rows[static_cast<std::size_t>(j)] = j;
  matrix_f x, y;
  data.gather(rows.data(), count, x, y);
  return x;
}

/// The products of one step of a model's dense layers, timed alone on random operands with the
/// build's GEMM engine: the rate a program that spent no time outside the products would reach
/// (`--products-only`). A training step runs each layer's forward, weight-gradient and
/// input-gradient products in the shapes the Dense layer uses (dense.hpp); evaluation the forward
/// ones. The rates are per window of `steps` steps, as the other tasks'.
std::vector<double> time_products(const std::vector<dense_stack>& stacks, bool training, const settings& s) {
  using B = EigenBackend<float>;
  struct product {
    matrix_f a, b, c;
    bool transpose_a, transpose_b;
    float beta;
  };
  std::vector<product> products;
  std::uint64_t seed = 10;
  const auto add = [&](Index a_rows, Index a_cols, bool ta, Index b_rows, Index b_cols, bool tb, float beta) {
    product p{normal_matrix(a_rows, a_cols, seed), normal_matrix(b_rows, b_cols, seed + 1), {}, ta, tb, beta};
    seed += 2;
    if (beta != 0.0f) p.c = normal_matrix(ta ? a_cols : a_rows, tb ? b_rows : b_cols, seed++);
    products.push_back(std::move(p));
  };
  for (const dense_stack& d : stacks) {
    const Index n = d.applications * s.batch;
    for (std::size_t k = 1; k < d.widths.size(); ++k) {
      const Index in = d.widths[k - 1], out = d.widths[k];
      add(out, in, false, in, n, false, 1.0f);  // Y = b + W X (the bias is in Y first)
      if (!training) continue;
      add(out, n, false, in, n, true, 0.0f);                                 // dW = dY X^T
      if (!(k == 1 && d.reads_input)) add(out, in, true, out, n, false, 0.0f);  // dX = W^T dY
    }
  }
  std::vector<clock_type::time_point> stamps;
  for (Index i = 0; i < s.warmup + s.windows * s.steps; ++i) {
    if (i >= s.warmup) stamps.push_back(clock_type::now());
    for (product& p : products) B::gemm(1.0f, p.a, p.transpose_a, p.b, p.transpose_b, p.beta, p.c);
  }
  stamps.push_back(clock_type::now());
  return window_rates(stamps, s.steps, s.batch);
}

const std::vector<std::string> tasks = {"combo-train",   "combo-infer",  "descriptor-infer", "fingerprint-infer",
                                        "docking-train", "fingerprint-train"};

/// The task names, comma-separated (for --help and errors).
std::string task_list() {
  std::string names;
  for (const std::string& t : tasks) names += (names.empty() ? "" : ", ") + t;
  return names;
}

bool is_training(const std::string& task) { return task.size() > 6 && task.compare(task.size() - 6, 6, "-train") == 0; }

void apply_defaults(settings& s) {
  if (std::find(tasks.begin(), tasks.end(), s.task) == tasks.end())
    throw config_error("unknown --task '" + s.task + "' (" + task_list() + ")");
  const bool training = is_training(s.task);
  if (s.batch == 0) s.batch = training ? 256 : s.task == "combo-infer" ? 4096 : 8192;
  if (s.steps == 0) s.steps = s.task == "combo-train" ? 5 : s.task == "docking-train" || s.task == "fingerprint-train" ? 60 : s.task == "combo-infer" ? 2 : 10;
  if (s.warmup == 0) s.warmup = training ? 3 : 2;
  if (training && s.precision != "default") throw config_error("--precision is for the inference tasks, not " + s.task);
  if (s.products_only && s.precision != "default")
    throw config_error("--products-only times the build's own GEMM engine: it takes no --precision");
  examples::require_positive("warmup", static_cast<double>(s.warmup));
  examples::require_positive("batch", static_cast<double>(s.batch));
  examples::require_positive("threads", static_cast<double>(s.threads));
  examples::require_positive("windows", static_cast<double>(s.windows));
  examples::require_positive("steps", static_cast<double>(s.steps));
}

/// The dense stacks of the task's model.
std::vector<dense_stack> stacks_of(const std::string& task, const combo_options& combo) {
  if (task == "combo-train" || task == "combo-infer") return combo_stacks(combo);
  if (task == "descriptor-infer" || task == "docking-train") return descriptor_stacks();
  return fingerprint_dense_equivalent();
}

int run(const settings& s) {
  examples::use_threads(s.threads);
  const combo_options combo;
  const bool training = is_training(s.task);
  const std::vector<dense_stack> stacks = stacks_of(s.task, combo);
  const double flop_per_sample = flop_count(stacks).per_sample(training);
  if (s.products_only) {
    if (s.task.rfind("fingerprint", 0) == 0)
      throw config_error("--products-only is for the dense models (the fingerprint MLP's first layer is sparse)");
    print_json(s, time_products(stacks, training, s), flop_per_sample);
    return 0;
  }
  if (s.task == "combo-train") {
    const Index n = 8 * s.batch;
    MatrixDataset<float> data(normal_matrix(combo.cell_width + 2 * combo.drug_width, n, 1), normal_matrix(1, n, 2));
    print_json(s, time_training(make_combo(combo), std::move(data), s), flop_per_sample);
  } else if (s.task == "combo-infer") {
    const Index inputs = combo.cell_width + 2 * combo.drug_width;
    print_json(s, time_inference(make_combo(combo), normal_matrix(inputs, s.batch, 1), s, normal_matrix(inputs, 8192, 3)),
               flop_per_sample);
  } else if (s.task == "descriptor-infer") {
    print_json(s, time_inference(make_descriptor_mlp(), library_features(molecule_features::descriptors, s.batch), s,
                                 library_features(molecule_features::descriptors, 8192, 1 << 20)),
               flop_per_sample);
  } else if (s.task == "fingerprint-infer") {
    print_json(s, time_inference(make_fingerprint_mlp(), library_features(molecule_features::fingerprint, s.batch), s,
                                 library_features(molecule_features::fingerprint, 8192, 1 << 20)),
               flop_per_sample);
  } else if (s.task == "docking-train") {
    const Index n = 32 * s.batch;
    MatrixDataset<float> data(library_features(molecule_features::descriptors, n), normal_matrix(1, n, 2));
    print_json(s, time_training(make_descriptor_mlp(), std::move(data), s), flop_per_sample);
  } else {  // fingerprint-train (apply_defaults checked the name)
    const Index n = 32 * s.batch;
    MatrixDataset<float> data(library_features(molecule_features::fingerprint, n), normal_matrix(1, n, 2));
    print_json(s, time_training(make_fingerprint_mlp(), std::move(data), s), flop_per_sample);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return examples::run_reporting_errors("bench_end_to_end", [&] {
    settings s;
    po::options_description shown(
        "bench_end_to_end: end-to-end throughput of Strata's models, one JSON line (see bench/compare)\nOptions");
    shown.add_options()("help", "show this help")(
        "task", po::value(&s.task)->default_value(s.task),
        task_list().c_str())(
        "batch", po::value(&s.batch)->default_value(s.batch), "samples per step (0: 256 training, 4,096 Combo inference, 8,192 docking inference)")(
        "threads", po::value(&s.threads)->default_value(s.threads), "compute threads")(
        "warmup", po::value(&s.warmup)->default_value(s.warmup), "steps run before timing (0: the task's default)")(
        "windows", po::value(&s.windows)->default_value(s.windows), "timed windows (the median is reported)")(
        "steps", po::value(&s.steps)->default_value(s.steps), "steps per window (0: the task's default)")(
        "precision", po::value(&s.precision)->default_value(s.precision),
        "inference tasks: default (the model's own products), or fp32, bf16 or int8 on oneDNN")(
        "products-only", po::bool_switch(&s.products_only),
        "time only the task's dense products (GEMMs on random operands, the shapes of one step): the rate "
        "with nothing outside the products, the ceiling for this GEMM engine");
    if (!examples::parse_options(po::command_line_parser(argc, argv).options(shown).run(), shown)) return 0;
    apply_defaults(s);
    return run(s);
  });
}
