// The Strata half of the conformance suite against PyTorch (torch_conformance.py is the other):
// every case trains a small model with Strata's own Trainer and writes what PyTorch needs to
// train the same model the same way and what it must then agree with:
//   case.json   the architecture (scripts/strata_torch.py rebuilds it) and a "training" member:
//               loss, optimizer, schedule, warm-up, clipping, parameter groups, epochs, batch
//   data.npz    x, y (features x samples, as Strata holds them), x_val, y_val, and order_<e>:
//               the sample order of epoch e (Strata's seeded shuffle)
//   init.npz    the initial tensors (Strata's initialisation), final.npz the trained ones
//   trace.npz   step_loss (the training loss of every step, before its update), epoch_lr,
//               val_loss (per epoch, when validated) and val_prediction (evaluation mode, at the end)
//   usage: conformance_cases OUTPUT_DIRECTORY
#include <strata/graph/architecture.hpp>
#include <strata/io/model_npz.hpp>
#include <strata/io/npz.hpp>
#include <strata/layers/sparse_input_dense.hpp>
#include <strata/loss/huber.hpp>
#include <strata/loss/mae.hpp>
#include <strata/loss/mse.hpp>
#include <strata/optim/adagrad.hpp>
#include <strata/optim/adam.hpp>
#include <strata/optim/rmsprop.hpp>
#include <strata/optim/schedule.hpp>
#include <strata/optim/sgd.hpp>
#include <strata/data/dataset.hpp>
#include <strata/data/loader.hpp>
#include <strata/parallel/serial.hpp>
#include <strata/models/combo.hpp>
#include <strata/strata.hpp>
#include <strata/train/callbacks.hpp>
#include <strata/train/trainer.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

using namespace strata;
namespace fs = std::filesystem;

namespace {

/// Every layer kind the suite covers, in one stack (a Dense feeding BatchNorm has no bias: its
/// gradient would be zero up to rounding noise, which Adam magnifies differently in each framework).
using Layered = Sequential<Dense<>, LayerNorm, ELU, Dense<>, BatchNorm, LeakyReLU, Dense<>, Sigmoid, Dense<>, Tanh,
                           Dense<>, ReLU, Dropout, Dense<1>>;
Layered layered() {
  return Layered{Dense<>{8}, LayerNorm{1e-5}, ELU{0.7},     Dense<>{8, Init::he_normal, false},
                 BatchNorm{1e-5, 0.2}, LeakyReLU{0.05}, Dense<>{8}, Sigmoid{}, Dense<>{8}, Tanh{}, Dense<>{8}, ReLU{},
                 Dropout{0.0},         Dense<1>{}};
}
using Sparse = Sequential<SparseInputDense<>, ReLU, Dense<1>>;
Sparse sparse() { return Sparse{SparseInputDense<>{12}, ReLU{}, Dense<1>{}}; }

/// What a case sets besides the model and the optimizer.
struct setup {
  std::string loss_json = "{\"kind\": \"MSE\"}";
  std::string optimizer_json, schedule_json = "null";
  Index epochs = 6, batch = 16, samples = 64, input = 6;
  bool sparse_input = false, validate = false;
  trainer_options options;
  std::vector<std::pair<std::string, parameter_group>> groups;
  std::function<void(std::vector<std::shared_ptr<callback>>&, double)> schedule;  // adds callbacks, given the base rate
};

template <class T>
void make_data(const setup& s, std::uint64_t seed, host_matrix<T>& x, host_matrix<T>& y, Index n) {
  const random_stream rng(seed, purpose::data);
  x.resize(s.input, n);
  y.resize(1, n);
  for (Index j = 0; j < n; ++j) {
    for (Index i = 0; i < s.input; ++i) {
      const double u = rng.uniform(static_cast<std::uint64_t>(j * s.input + i));
      x(i, j) = static_cast<T>(s.sparse_input ? std::floor(3 * u * u) : 2 * u - 1);  // counts 0..2, or [-1, 1)
    }
    const double noise = rng.uniform(static_cast<std::uint64_t>(1'000'000 + j)) - 0.5;
    y(0, j) = static_cast<T>(std::sin(2 * x(0, j)) + x(1, j) * x(2, j) - 0.5 * x(3 % s.input, j) + 0.1 * noise);
  }
}

/// The JSON of an optimizer's hyperparameters, in PyTorch's names.
std::string describe(const SGD& o) {
  return detail::concat("{\"kind\": \"SGD\", \"lr\": ", o.lr, ", \"momentum\": ", o.momentum, ", \"dampening\": ",
                        o.dampening, ", \"weight_decay\": ", o.weight_decay, ", \"nesterov\": ", o.nesterov ? "true" : "false",
                        "}");
}
template <class A>
std::string describe_adam(const A& o, const char* kind) {
  return detail::concat("{\"kind\": \"", kind, "\", \"lr\": ", o.lr, ", \"betas\": [", o.beta1, ", ", o.beta2,
                        "], \"eps\": ", o.eps, ", \"weight_decay\": ", o.weight_decay, "}");
}
std::string describe(const Adam& o) { return describe_adam(o, "Adam"); }
std::string describe(const AdamW& o) { return describe_adam(o, "AdamW"); }
std::string describe(const RMSprop& o) {
  return detail::concat("{\"kind\": \"RMSprop\", \"lr\": ", o.lr, ", \"alpha\": ", o.alpha, ", \"eps\": ", o.eps,
                        ", \"weight_decay\": ", o.weight_decay, ", \"momentum\": ", o.momentum,
                        ", \"centered\": ", o.centered ? "true" : "false", "}");
}
std::string describe(const Adagrad& o) {
  return detail::concat("{\"kind\": \"Adagrad\", \"lr\": ", o.lr, ", \"lr_decay\": ", o.lr_decay, ", \"weight_decay\": ",
                        o.weight_decay, ", \"initial_accumulator_value\": ", o.initial_accumulator_value,
                        ", \"eps\": ", o.eps, "}");
}

/// Records the loss of every step: the trainer reports the running mean of the epoch.
class step_losses : public callback {
 public:
  std::vector<double> losses;
  void on_epoch_begin(Index, training_control&) override { done_ = 0, sum_ = 0.0; }
  void on_batch_end(const batch_progress& p) override {
    const double sum = p.mean_loss * static_cast<double>(p.samples_done);
    losses.push_back((sum - sum_) / static_cast<double>(p.samples_done - done_));
    sum_ = sum;
    done_ = p.samples_done;
  }

 private:
  Index done_ = 0;
  double sum_ = 0.0;
};

template <class Spec, class B, class Loss, class Optimizer>
void run_case(const fs::path& root, const std::string& name, Spec spec, Loss loss, Optimizer optimizer, setup s) {
  using T = typename B::scalar;
  const fs::path dir = root / name;
  fs::create_directories(dir);
  host_matrix<T> x, y, xv, yv;
  make_data(s, 1, x, y, s.samples);
  make_data(s, 2, xv, yv, s.samples / 2);
  const MatrixDataset<T> train(x, y), validation(xv, yv);

  Model<Spec, B> model(std::move(spec));
  model.build(s.input, 7);
  save_npz(model, (dir / "init.npz").string());
  std::ostringstream groups;
  for (const auto& [pattern, g] : s.groups) {
    model.set_group(pattern, g);
    groups << (groups.tellp() > 0 ? ", " : "") << "[" << detail::json_quoted(pattern) << ", " << g.lr_scale << ", "
           << (g.weight_decay ? "true" : "false") << "]";
  }
  s.options.batch_size = s.batch;
  s.options.seed = 3;
  s.options.prefetch = false;
  const std::string training = detail::concat(
      "{\"loss\": ", s.loss_json, ", \"optimizer\": ", describe(optimizer), ", \"schedule\": ", s.schedule_json,
      ", \"warmup_steps\": ", s.options.warmup_steps, ", \"clip_norm\": ", s.options.clip_norm, ", \"groups\": [",
      groups.str(), "], \"epochs\": ", s.epochs, ", \"batch\": ", s.batch, ", \"validate\": ", s.validate ? "true" : "false",
      "}");
  write_architecture(model, (dir / "case.json").string(), {{"training", training}});

  npz_archive data;
  data.add("x", x);
  data.add("y", y);
  data.add("x_val", xv);
  data.add("y_val", yv);
  for (Index e = 0; e < s.epochs; ++e) {
    const auto order = BatchLoader<MatrixDataset<T>>::epoch_order(s.samples, s.options.seed, static_cast<std::uint64_t>(e));
    matrix_d o(static_cast<Index>(order.size()), 1);
    for (std::size_t k = 0; k < order.size(); ++k) o(static_cast<Index>(k), 0) = static_cast<double>(order[k]);
    data.add("order_" + std::to_string(e), o, true);
  }
  data.write((dir / "data.npz").string());

  const double base_lr = optimizer.lr;
  Trainer<Spec, Loss, Optimizer, Serial, B> trainer(std::move(model), loss, optimizer, Serial{}, s.options);
  auto steps = std::make_shared<step_losses>();
  trainer.add_callback(steps);
  if (s.schedule) {
    std::vector<std::shared_ptr<callback>> callbacks;
    s.schedule(callbacks, base_lr);
    for (auto& c : callbacks) trainer.add_callback(c);
  }
  const auto history = trainer.fit(train, s.epochs, s.validate ? &validation : nullptr);

  save_npz(trainer.model(), (dir / "final.npz").string());
  npz_archive trace;
  trace.add("step_loss", Eigen::Map<const matrix_d>(steps->losses.data(), static_cast<Index>(steps->losses.size()), 1), true);
  matrix_d lr(s.epochs, 1), val(s.epochs, 1);
  for (Index e = 0; e < s.epochs; ++e) {
    lr(e, 0) = history[static_cast<std::size_t>(e)].learning_rate;
    val(e, 0) = s.validate ? history[static_cast<std::size_t>(e)].validation.at("loss") : NAN;
  }
  trace.add("epoch_lr", lr, true);
  if (s.validate) trace.add("val_loss", val, true);
  host_matrix<T> xs, ys;
  std::vector<Index> all(static_cast<std::size_t>(validation.size()));
  std::iota(all.begin(), all.end(), Index{0});
  validation.gather(all.data(), validation.size(), xs, ys);
  pass_info eval;
  eval.phase = mode::eval;
  trace.add("val_prediction", host_matrix<T>(trainer.model().forward(xs, eval)));
  trace.write((dir / "trace.npz").string());
  std::cout << name << ": " << steps->losses.size() << " steps, loss " << steps->losses.front() << " -> "
            << steps->losses.back() << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: conformance_cases OUTPUT_DIRECTORY\n";
    return 2;
  }
  const fs::path root = argv[1];
  using F64 = EigenBackend<double>;
  try {
    setup s;
    // Optimizers, each with the layer stack and MSE.
    run_case<Layered, F64>(root, "sgd_momentum_dampening_decay", layered(), MSE{}, SGD{0.05, 0.9, 0.1, 1e-3, false}, s);
    run_case<Layered, F64>(root, "sgd_nesterov", layered(), MSE{}, SGD{0.05, 0.9, 0.0, 1e-3, true}, s);
    run_case<Layered, F64>(root, "adam", layered(), MSE{}, Adam{1e-2, 0.9, 0.999, 1e-8, 1e-3}, s);
    run_case<Layered, F64>(root, "rmsprop", layered(), MSE{}, RMSprop{1e-3, 0.99, 1e-8, 0.0, 0.0, false}, s);
    run_case<Layered, F64>(root, "rmsprop_centered_momentum", layered(), MSE{}, RMSprop{1e-3, 0.9, 1e-8, 1e-3, 0.5, true}, s);
    run_case<Layered, F64>(root, "adagrad", layered(), MSE{}, Adagrad{0.05, 0.01, 1e-3, 0.1, 1e-10}, s);
    {  // AdamW under StepLR
      setup c = s;
      c.schedule_json = "{\"kind\": \"StepLR\", \"step_size\": 2, \"gamma\": 0.5}";
      c.schedule = [](auto& out, double base) { out.push_back(std::make_shared<LearningRateSchedule<StepLR>>(StepLR{2, 0.5}, base)); };
      run_case<Layered, F64>(root, "adamw_steplr", layered(), MSE{}, AdamW{1e-2, 0.9, 0.99, 1e-8, 0.05}, c);
    }
    {  // cosine annealing
      setup c = s;
      c.schedule_json = "{\"kind\": \"CosineAnnealingLR\", \"T_max\": 4, \"eta_min\": 1e-4}";
      c.schedule = [](auto& out, double base) {
        out.push_back(std::make_shared<LearningRateSchedule<CosineAnnealingLR>>(CosineAnnealingLR{4, 1e-4}, base));
      };
      run_case<Layered, F64>(root, "adam_cosine", layered(), MSE{}, Adam{1e-2}, c);
    }
    {  // linear warm-up (per epoch, LinearLR) into a constant rate, with MAE
      setup c = s;
      c.loss_json = "{\"kind\": \"L1\"}";
      c.schedule_json = "{\"kind\": \"LinearWarmup\", \"warmup\": 3, \"start_factor\": 0.25}";
      c.schedule = [](auto& out, double base) {
        out.push_back(std::make_shared<LearningRateSchedule<LinearWarmup<>>>(LinearWarmup<>{3, 0.25}, base));
      };
      run_case<Layered, F64>(root, "mae_sgd_linear_warmup", layered(), MAE{}, SGD{0.05, 0.5}, c);
    }
    {  // Huber, per-step warm-up of the trainer, clipping by global norm
      setup c = s;
      c.loss_json = "{\"kind\": \"Huber\", \"delta\": 0.5}";
      c.options.warmup_steps = 5;
      c.options.clip_norm = 0.05;
      run_case<Layered, F64>(root, "huber_adam_warmup_clip", layered(), Huber{0.5}, Adam{1e-2}, c);
    }
    {  // parameter groups: a frozen layer, biases without decay, a slower last layer
      setup c = s;
      c.groups = {{"*.bias", {1.0, false}}, {"13:Dense.weight", {0.25, true}}, {"0:Dense", {0.0, true}}};
      run_case<Layered, F64>(root, "adam_parameter_groups", layered(), MSE{}, Adam{1e-2, 0.9, 0.999, 1e-8, 0.01}, c);
    }
    {  // ReduceLROnPlateau on the validation loss
      setup c = s;
      c.epochs = 10;
      c.validate = true;
      c.schedule_json = "{\"kind\": \"ReduceLROnPlateau\", \"factor\": 0.5, \"patience\": 1, \"threshold\": 0.01, "
                        "\"cooldown\": 1, \"min_lr\": 1e-3}";
      c.schedule = [](auto& out, double) {
        out.push_back(std::make_shared<PlateauSchedule>(
            ReduceLROnPlateau{plateau_mode::min, 0.5, 1, 0.01, threshold_mode::rel, 1, 1e-3}, "loss"));
      };
      run_case<Layered, F64>(root, "sgd_plateau", layered(), MSE{}, SGD{0.2, 0.9}, c);
    }
    {  // a sparse first layer on count features
      setup c = s;
      c.sparse_input = true;
      c.input = 20;
      run_case<Sparse, F64>(root, "sparse_input_adam", sparse(), MSE{}, Adam{1e-2}, c);
    }
    {  // the Combo model: cell encoder, one drug encoder shared by both drugs, prediction stack
      setup c = s;
      c.input = 6 + 2 * 5;
      run_case<Combo, F64>(root, "combo_adam", make_combo({6, 5, 8, 0.0}), MSE{}, Adam{1e-2}, c);
    }
    {  // float32: 52 steps
      setup c = s;
      c.epochs = 13;
      run_case<Layered, EigenBackend<float>>(root, "float32_adam_52_steps", layered(), MSE{}, Adam{1e-2}, c);
    }
  } catch (const std::exception& e) {
    std::cerr << "conformance_cases: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
