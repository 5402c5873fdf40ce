// ModelParallel under mpiexec with 1, 2 and 4 ranks: dense layers split by output rows, alone
// and on a data x model grid. Each rank also trains the unsplit model serially, so every test
// compares the split model with the serial one in one program.
#include <catch2/catch.hpp>

#include <strata/strata.hpp>
#include <strata/data/dataset.hpp>
#include <strata/parallel/model_parallel.hpp>
#include <strata/parallel/mpi_communicator.hpp>
#include <strata/train/trainer.hpp>

#include "../support/toy_regression.hpp"

#include <cmath>
#include <cstdio>
#include <string>

using namespace strata;
using Catch::Matchers::Contains;

namespace {

using Layer = Sequential<Dense<>, ReLU, Dropout>;
/// Two input branches (one a shared encoder over two slices), a wide hidden layer and a head:
/// split layers inside Fork and Shared, dropout masks that must agree across the group, and a
/// one-output layer that stays whole.
using Net = Sequential<Fork<Branch<Layer>, Shared<Layer, Slice<>, Slice<>>>, Dense<>, Tanh, Dense<1>>;

Net make_net() {
  const Layer layer{Dense<>{12}, ReLU{}, Dropout{0.1}};
  return Net{{Branch<Layer>{Slice<>{0, 3}, layer}, Shared<Layer, Slice<>, Slice<>>{layer, Slice<>{3, 7}, Slice<>{7, 11}}},
             Dense<>{10}, Tanh{}, Dense<1>{}};
}

MatrixDataset<float> make_data(Index n, std::uint64_t salt) { return strata::testing::toy_regression(11, n, salt); }

trainer_options options() {
  trainer_options o;
  o.batch_size = 32;
  o.seed = 4;
  return o;
}

using MP = ModelParallel<MpiCommunicator>;

model_parallel_options grid(int model_ranks, bool deterministic = false) {
  model_parallel_options o;
  o.model_ranks = model_ranks;
  o.min_rows_per_rank = 2;  // the test's layers are narrow: split 10 and 12 rows even over 4 ranks
  o.data.deterministic = deterministic;
  return o;
}

Trainer<Net> make_serial() {
  Model<Net> model(make_net());
  model.build(11, 3);
  return Trainer<Net>(std::move(model), MSE{}, Adam{1e-2}, Serial{}, options());
}

Trainer<Net, MSE, Adam, MP> make_split(model_parallel_options o) {
  MP strategy(MpiCommunicator{}, o);
  Model<Net> model(make_net());
  model.build(11, 3, strategy.partition());
  return Trainer<Net, MSE, Adam, MP>(std::move(model), MSE{}, Adam{1e-2}, std::move(strategy), options());
}

/// Every parameter as whole tensors, concatenated (collective under model parallelism).
template <class Trainer>
std::vector<float> whole_weights(Trainer& t) {
  std::vector<float> w;
  for (auto& p : t.model().parameters())
    t.strategy().template with_whole<EigenBackend<float>>(p.split, *p.value, [&](auto& m) {
      w.insert(w.end(), m.data(), m.data() + m.size());
    });
  return w;
}

double worst_relative_difference(const std::vector<float>& a, const std::vector<float>& b) {
  double worst = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i)
    worst = std::max(worst, std::abs(static_cast<double>(a[i]) - b[i]) / (1.0 + std::abs(a[i])));
  return worst;
}

}  // namespace

TEST_CASE("A split model holds its rows of every wide dense layer and starts from the serial weights") {
  const int p = MpiCommunicator{}.size();
  auto serial = make_serial();
  auto split = make_split(grid(p));
  const auto& parts = split.model().parameters();
  const auto& whole = serial.model().parameters();
  REQUIRE(parts.size() == whole.size());
  for (std::size_t k = 0; k < parts.size(); ++k) {
    INFO(parts[k].name);
    CHECK(parts[k].name == whole[k].name);
    const Index rows = whole[k].value->rows();
    const bool expect_split = p > 1 && rows >= 2 * p;
    CHECK(parts[k].split.split() == expect_split);
    if (expect_split) {
      CHECK(parts[k].split.whole_rows == rows);
      CHECK(parts[k].value->rows() == parts[k].split.rows);
      CHECK(std::abs(parts[k].split.rows - static_cast<double>(rows) / p) < 1.0);
      CHECK(*parts[k].value == whole[k].value->middleRows(parts[k].split.offset, parts[k].split.rows));
    } else {
      CHECK(*parts[k].value == *whole[k].value);
    }
  }
  CHECK(whole_weights(split) == whole_weights(serial));
}

TEST_CASE("Split forward and backward equal the unsplit model's") {
  const int p = MpiCommunicator{}.size();
  MP strategy(MpiCommunicator{}, grid(p));
  Model<Net, EigenBackend<double>> split(make_net()), whole(make_net());
  split.build(11, 9, strategy.partition());
  whole.build(11, 9);
  const auto data = make_data(20, 3);
  const matrix_d x = data.features().cast<double>();
  pass_info pass;
  pass.step = 2;
  const matrix_d y_split = split.forward(x, pass), y_whole = whole.forward(x, pass);
  CHECK((y_split - y_whole).cwiseAbs().maxCoeff() < 1e-12);
  const matrix_d dy = matrix_d::Ones(1, 20) / 20.0;
  const matrix_d dx_split = split.backward(dy, true), dx_whole = whole.backward(dy, true);
  CHECK((dx_split - dx_whole).cwiseAbs().maxCoeff() < 1e-12);
  for (std::size_t k = 0; k < whole.parameters().size(); ++k) {
    const auto& a = split.parameters()[k];
    const auto& b = whole.parameters()[k];
    INFO(b.name);
    const matrix_d expected = a.split.split() ? matrix_d(b.gradient->middleRows(a.split.offset, a.split.rows)) : *b.gradient;
    CHECK((*a.gradient - expected).cwiseAbs().maxCoeff() < 1e-12);
  }
}

TEST_CASE("Model-parallel training equals serial training over many steps") {
  const auto train = make_data(256, 1), validation = make_data(96, 2);
  auto serial = make_serial();
  serial.fit(train, 3);
  const auto expected = whole_weights(serial);
  const int p = MpiCommunicator{}.size();
  // Pure model parallelism, then every grid the rank count allows (data x model).
  for (int m = p; m >= 1; m /= 2) {
    for (const bool deterministic : {false, true}) {
      if (deterministic && p / m > 4) continue;
      INFO(p / m << " data x " << m << " model ranks" << (deterministic ? ", deterministic" : ""));
      auto split = make_split(grid(m, deterministic));
      CHECK(split.strategy().model_ranks() == m);
      CHECK(split.strategy().data_ranks() == p / m);
      split.fit(train, 3);
      CHECK(split.step() == serial.step());
      const double worst = worst_relative_difference(expected, whole_weights(split));
      INFO("largest relative difference " << worst);
      CHECK(worst < 1e-5);
      const evaluation es = serial.evaluate(validation), ep = split.evaluate(validation);
      CHECK(ep.loss == Approx(es.loss).epsilon(1e-4));
    }
  }
}

TEST_CASE("Weight and optimizer memory per rank fall as 1/M for split layers") {
  const int p = MpiCommunicator{}.size();
  auto serial = make_serial();
  auto split = make_split(grid(p));
  Index split_whole = 0, split_local = 0, local_values = 0, serial_values = 0, local_state = 0, serial_state = 0;
  Index slack = 0;  // rows are split as evenly as possible: at most one row more than 1/p of each layer
  for (std::size_t k = 0; k < split.model().parameters().size(); ++k) {
    const auto& mine = split.model().parameters()[k];
    const auto& whole = serial.model().parameters()[k];
    local_values += mine.value->size();
    serial_values += whole.value->size();
    if (!mine.split.split()) continue;
    split_whole += whole.value->size();
    split_local += mine.value->size();
    slack += mine.value->cols();
  }
  split.optimizer().for_each_state([&](const std::string&, matrix_f& m) { local_state += m.size(); });
  serial.optimizer().for_each_state([&](const std::string&, matrix_f& m) { serial_state += m.size(); });
  if (MpiCommunicator{}.rank() == 0)
    std::printf("model parallel over %d ranks: split layers hold %ld of %ld values per rank; weights + Adam state "
                "%ld of %ld values per rank\n",
                p, static_cast<long>(split_local), static_cast<long>(split_whole), static_cast<long>(local_values + local_state),
                static_cast<long>(serial_values + serial_state));
  CHECK(std::abs(static_cast<double>(split_local) - static_cast<double>(split_whole) / p) <= static_cast<double>(slack));
  CHECK(local_state == 2 * local_values);  // Adam keeps two moments per value held here
  CHECK(serial_state == 2 * serial_values);
  if (p > 1) CHECK(local_values < serial_values);
}

TEST_CASE("Model-parallel checkpoints hold whole tensors and move to and from serial runs") {
  const auto train = make_data(256, 1);
  const int p = MpiCommunicator{}.size();
  // The split trainer's root writes one file for all; serial trainers write one each.
  const std::string shared_path = "strata_mp_split.ck";
  const std::string path = "strata_mp_rank" + std::to_string(MpiCommunicator{}.rank()) + ".ck";
  auto uninterrupted = make_serial();
  uninterrupted.fit(train, 3);

  auto split = make_split(grid(p));
  split.fit(train, 2);
  split.save(shared_path);
  MpiCommunicator{}.barrier();
  auto resumed = make_serial();
  const checkpoint file = resumed.load(shared_path);
  CHECK(file.find("parameter/model/1:Dense.weight")->rows == 10);  // whole, not one rank's rows
  resumed.fit(train, 3);
  CHECK(worst_relative_difference(whole_weights(uninterrupted), whole_weights(resumed)) < 1e-5);

  // And back: a serial checkpoint resumed split.
  auto first = make_serial();
  first.fit(train, 2);
  first.save(path);
  auto split_resumed = make_split(grid(p));
  split_resumed.load(path);
  split_resumed.fit(train, 3);
  std::remove(path.c_str());
  MpiCommunicator{}.barrier();
  if (MpiCommunicator{}.rank() == 0) std::remove(shared_path.c_str());
  CHECK(worst_relative_difference(whole_weights(uninterrupted), whole_weights(split_resumed)) < 1e-5);
}

TEST_CASE("A model-parallel grid must fit the rank count") {
  const int p = MpiCommunicator{}.size();
  if (p == 4) CHECK_THROWS_WITH(MP(MpiCommunicator{}, grid(3)), Contains("4 ranks cannot form groups of 3 model ranks"));
  model_parallel_options zero = grid(p);
  zero.data.shard_optimizer = true;
  if (p > 1) CHECK_THROWS_WITH(MP(MpiCommunicator{}, zero), Contains("cannot be combined with model parallelism"));
}

TEST_CASE("Model-parallel training clips by the global norm, as serial training does") {
  const auto train = make_data(256, 1);
  trainer_options o = options();
  o.clip_norm = 0.05;  // small enough to clip every step
  Model<Net> reference(make_net());
  reference.build(11, 3);
  Trainer<Net> serial(std::move(reference), MSE{}, Adam{1e-2}, Serial{}, o);
  serial.fit(train, 2);
  const int p = MpiCommunicator{}.size();
  MP strategy(MpiCommunicator{}, grid(p));
  Model<Net> model(make_net());
  model.build(11, 3, strategy.partition());
  Trainer<Net, MSE, Adam, MP> split(std::move(model), MSE{}, Adam{1e-2}, std::move(strategy), o);
  split.fit(train, 2);
  const double worst = worst_relative_difference(whole_weights(serial), whole_weights(split));
  INFO("largest relative difference " << worst);
  CHECK(worst < 1e-5);
}
