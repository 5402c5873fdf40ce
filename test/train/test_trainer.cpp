// The serial training loop: it learns, it is reproducible to the bit, and its callbacks do
// what they say.
#include <catch2/catch.hpp>

#include <strata/strata.hpp>
#include <strata/data/dataset.hpp>
#include <strata/train/callbacks.hpp>
#include <strata/train/trainer.hpp>

#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>

using namespace strata;
using Catch::Matchers::Contains;

namespace {
using Net = Sequential<Dense<32>, Tanh, Dense<32>, Tanh, Dense<1>>;

/// y = sin(2 x0) * x1 + 0.5 x2^2: smooth, nonlinear, noise-free (so the loss can go low).
MatrixDataset<float> regression_data(Index n, std::uint64_t seed) {
  const random_stream rng(seed, purpose::data);
  matrix_f x(3, n), y(1, n);
  for (Index j = 0; j < n; ++j) {
    for (Index i = 0; i < 3; ++i) x(i, j) = static_cast<float>(2 * rng.uniform(static_cast<std::uint64_t>(3 * j + i)) - 1);
    y(0, j) = std::sin(2 * x(0, j)) * x(1, j) + 0.5f * x(2, j) * x(2, j);
  }
  return {x, y};
}

Trainer<Net> make_trainer(std::uint64_t seed, Index batch = 32) {
  Model<Net> model;
  model.build(3, seed);
  trainer_options options;
  options.batch_size = batch;
  options.seed = seed;
  return Trainer<Net>(std::move(model), MSE{}, Adam{3e-3}, Serial{}, options);
}
}  // namespace

TEST_CASE("A small regression problem trains to low loss") {
  const auto train = regression_data(1024, 1), validation = regression_data(256, 2);
  auto trainer = make_trainer(5);
  const double before = trainer.evaluate(validation).metrics.at("mse");
  const auto history = trainer.fit(train, 60, &validation);
  REQUIRE(history.size() == 60);
  const auto& last = history.back().validation;
  CHECK(history.back().train_loss < history.front().train_loss / 10);
  CHECK(last.at("mse") < before / 20);
  CHECK(last.at("r2") > 0.97);
  CHECK(last.at("pearson") > 0.98);
  CHECK(last.at("loss") == Approx(last.at("mse")).epsilon(1e-5));
  CHECK(trainer.step() == 60 * (1024 / 32));
}

TEST_CASE("The same seed gives bit-identical weights; another seed does not") {
  const auto train = regression_data(300, 3);
  auto a = make_trainer(11, 64), b = make_trainer(11, 64), c = make_trainer(12, 64);
  a.fit(train, 3);
  b.fit(train, 3);
  c.fit(train, 3);
  auto& pa = a.model().parameters();
  auto& pb = b.model().parameters();
  auto& pc = c.model().parameters();
  bool all_equal = true, any_differs = false;
  for (std::size_t k = 0; k < pa.size(); ++k) {
    all_equal = all_equal && (*pa[k].value == *pb[k].value);
    any_differs = any_differs || (*pa[k].value != *pc[k].value);
  }
  CHECK(all_equal);
  CHECK(any_differs);
}

TEST_CASE("Continuing fit after an interruption equals one uninterrupted fit") {
  const auto train = regression_data(200, 4);
  auto whole = make_trainer(3, 50), parts = make_trainer(3, 50);
  whole.fit(train, 4);
  parts.fit(train, 2);
  parts.fit(train, 4);
  CHECK(parts.epoch() == 4);
  for (std::size_t k = 0; k < whole.model().parameters().size(); ++k)
    CHECK(*whole.model().parameters()[k].value == *parts.model().parameters()[k].value);
}

TEST_CASE("A learning rate set during an epoch stays in force after it (as a tournament sets it)") {
  // A callback changes the rate in the middle of the first epoch, as LTFB does when a trainer
  // adopts its partner's model; the epoch's end must not put back the rate it started with.
  struct change_mid_epoch : callback {
    Trainer<Net>* trainer = nullptr;
    std::vector<double> rates_after_epochs;
    void on_batch_end(const batch_progress& p) override {
      if (p.step == 2) trainer->set_learning_rate(1e-4);
    }
    void on_epoch_end(const epoch_record&, training_control& control) override {
      rates_after_epochs.push_back(control.learning_rate);
    }
  };
  auto trainer = make_trainer(3, 50);
  auto cb = std::make_shared<change_mid_epoch>();
  cb->trainer = &trainer;
  trainer.add_callback(cb);
  const auto history = trainer.fit(regression_data(200, 4), 2);
  CHECK(cb->rates_after_epochs == std::vector<double>{1e-4, 1e-4});
  CHECK(trainer.learning_rate() == 1e-4);
  CHECK(history[1].learning_rate == 1e-4);
}

TEST_CASE("Callbacks: progress, early stopping, schedules and metric logs") {
  const auto train = regression_data(256, 6), validation = regression_data(64, 7);

  SECTION("the progress printer writes one line per epoch with the figures") {
    auto trainer = make_trainer(1);
    std::ostringstream out;
    trainer.add_callback(std::make_shared<ProgressPrinter>(out));
    trainer.fit(train, 2, &validation);
    const std::string text = out.str();
    CHECK_THAT(text, Contains("epoch 1: train loss") && Contains("epoch 2: train loss") && Contains("val r2") &&
                         Contains("samples/s"));
  }
  SECTION("early stopping ends training when the watched figure stops improving") {
    auto trainer = make_trainer(1);
    // A learning rate of zero: the validation loss can never improve after the first epoch.
    trainer.set_learning_rate(0.0);
    auto stopper = std::make_shared<EarlyStopping>("loss", 2);
    trainer.add_callback(stopper);
    const auto history = trainer.fit(train, 50, &validation);
    CHECK(history.size() == 4);  // epoch 1 sets the best, 2 more are tolerated, the 4th stops
    CHECK(stopper->best_epoch() == 0);
  }
  SECTION("a step schedule sets the learning rate of every epoch") {
    auto trainer = make_trainer(1);
    trainer.add_callback(std::make_shared<LearningRateSchedule<StepLR>>(StepLR(2, 0.5), 1e-2));
    const auto history = trainer.fit(train, 5);
    CHECK(history[0].learning_rate == Approx(1e-2));
    CHECK(history[1].learning_rate == Approx(1e-2));
    CHECK(history[2].learning_rate == Approx(5e-3));
    CHECK(history[4].learning_rate == Approx(2.5e-3));
  }
  SECTION("metrics are logged as CSV and as JSON lines") {
    const std::string csv = "strata_test_metrics.csv", jsonl = "strata_test_metrics.jsonl";
    auto trainer = make_trainer(1);
    trainer.add_callback(std::make_shared<MetricsLog>(csv));
    trainer.add_callback(std::make_shared<MetricsLog>(jsonl));
    trainer.fit(train, 3, &validation);
    std::ifstream c(csv), j(jsonl);
    std::string header, line;
    std::getline(c, header);
    CHECK_THAT(header, Contains("epoch,train_loss,lr") && Contains("val_r2"));
    int rows = 0;
    while (std::getline(c, line)) ++rows;
    CHECK(rows == 3);
    std::getline(j, line);
    CHECK_THAT(line, Contains("{\"epoch\":1,\"train_loss\":") && Contains("\"val_spearman\":"));
    std::remove(csv.c_str());
    std::remove(jsonl.c_str());
    CHECK_THROWS_AS(MetricsLog("metrics.txt"), config_error);
  }
}

TEST_CASE("Training data that does not fit the model is refused with both widths") {
  auto trainer = make_trainer(1);
  const MatrixDataset<float> wrong(matrix_f::Ones(4, 10), matrix_f::Ones(1, 10));
  CHECK_THROWS_WITH(trainer.fit(wrong, 1), Contains("expects 3 input features") && Contains("has 4"));
  const MatrixDataset<float> nan_data(matrix_f::Constant(3, 10, NAN), matrix_f::Ones(1, 10));
  CHECK_THROWS_AS(trainer.fit(nan_data, 1), numeric_error);
}

TEST_CASE("A clipping norm that would silently switch clipping off is refused") {
  trainer_options options;
  for (const double bad : {-1.0, double(NAN), double(INFINITY)}) {
    options.clip_norm = bad;
    CHECK_THROWS_WITH(options.validate(), Contains("clip_norm must be 0 (off) or a positive, finite norm"));
  }
  options.clip_norm = 0.5;
  CHECK_NOTHROW(options.validate());
}

namespace {
/// Every parameter's values, by name.
std::map<std::string, matrix_f> parameters_of(Trainer<Net, MSE, AdamW>& t) {
  std::map<std::string, matrix_f> out;
  for (auto& p : t.model().parameters()) out[p.name] = *p.value;
  return out;
}

Trainer<Net, MSE, AdamW> make_adamw_trainer(double lr, const std::function<void(Model<Net>&)>& groups, trainer_options options = {}) {
  Model<Net> model;
  model.build(3, 7);
  groups(model);
  options.batch_size = 32;
  options.seed = 7;
  // AdamW decays every weight it touches: a frozen tensor that kept its bits was not decayed.
  return Trainer<Net, MSE, AdamW>(std::move(model), MSE{}, AdamW{lr, 0.9, 0.999, 1e-8, 0.1}, Serial{}, options);
}
}  // namespace

TEST_CASE("A frozen layer keeps its bits while the layers before and after it train") {
  const auto train = regression_data(256, 8);
  // The middle layer is frozen: the first layer still trains, so gradients flow through it.
  auto t = make_adamw_trainer(3e-3, [](Model<Net>& m) { CHECK(m.freeze("2:Dense") == 2); });
  const auto before = parameters_of(t);
  t.fit(train, 2);
  const auto after = parameters_of(t);
  for (const auto& [name, value] : before) {
    INFO(name);
    if (name.find("2:Dense") != std::string::npos)
      CHECK(after.at(name) == value);
    else
      CHECK(after.at(name) != value);
  }
  t.optimizer().for_each_state([](const std::string& name, matrix_f& state) {
    INFO(name);
    if (name.find("2:Dense") != std::string::npos) CHECK(state.isZero(0.0));
  });

  SECTION("and thawed, it trains again") {
    t.model().set_group("2:Dense", parameter_group{});
    t.fit(train, 3);
    CHECK(parameters_of(t).at("model/2:Dense.weight") != before.at("model/2:Dense.weight"));
  }
  SECTION("a resumed run keeps it frozen, to the bits of an uninterrupted run") {
    const std::string path = "strata_frozen_resume.ck";
    t.save(path);
    auto resumed = make_adamw_trainer(3e-3, [](Model<Net>&) {});  // groups come from the checkpoint
    resumed.load(path);
    std::remove(path.c_str());
    resumed.fit(train, 4);
    t.fit(train, 4);
    CHECK(parameters_of(resumed) == parameters_of(t));
    CHECK(parameters_of(resumed).at("model/2:Dense.weight") == before.at("model/2:Dense.weight"));
  }
}

TEST_CASE("A learning-rate multiplier of 0.1 equals training that layer at a 10x smaller rate") {
  const auto train = regression_data(256, 9);
  // The rate is a power of two, so (lr * 0.1) * 10 is exactly lr: both runs give every layer
  // the same rate through different base rates and multipliers.
  const double lr = 1.0 / 256;
  auto scaled = make_adamw_trainer(lr, [](Model<Net>& m) { m.set_group("4:Dense", {0.1}); });
  auto reference = make_adamw_trainer(lr * 0.1, [](Model<Net>& m) {
    m.set_group("0:Dense", {10.0});
    m.set_group("2:*", {10.0});
  });
  scaled.fit(train, 2);
  reference.fit(train, 2);
  CHECK(parameters_of(scaled) == parameters_of(reference));

  SECTION("groups can switch weight decay off, for biases say") {
    auto no_bias_decay = make_adamw_trainer(lr, [](Model<Net>& m) { CHECK(m.set_group("*.bias", {1.0, false}) == 3); });
    auto plain = make_adamw_trainer(lr, [](Model<Net>&) {});
    no_bias_decay.fit(train, 1);
    plain.fit(train, 1);
    const auto a = parameters_of(no_bias_decay), b = parameters_of(plain);
    CHECK(a.at("model/0:Dense.bias") != b.at("model/0:Dense.bias"));
  }
}

TEST_CASE("Group selection that matches nothing, or a bad multiplier, is an error") {
  Model<Net> model;
  model.build(3, 1);
  CHECK_THROWS_WITH(model.freeze("7:Dense"), Contains("selects no parameter") && Contains("model/4:Dense.bias"));
  CHECK_THROWS_WITH(model.set_group("0:Dense", {-1.0}), Contains("must be finite and not negative"));
  CHECK(model.set_group("model/0:Dense", {0.5}) == 2);  // the root's prefix may be given
  CHECK(model.parameters()[0].group.lr_scale == 0.5);
  CHECK(model.freeze("*") == 6);
}
