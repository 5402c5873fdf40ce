// Collectives over Boost.MPI and the DataParallel strategy, run under mpiexec with 1, 2 and 4
// ranks. Reference runs with one process are computed inside every rank (SerialCommunicator),
// so each test compares P ranks with 1 rank in one program.
#include <catch2/catch.hpp>

#include <strata/strata.hpp>
#include <strata/data/dataset.hpp>
#include <strata/parallel/data_parallel.hpp>
#include <strata/parallel/mpi_communicator.hpp>
#include <strata/train/trainer.hpp>

#include "../support/toy_regression.hpp"

#include <cmath>
#include <cstdio>
#include <memory>
#include <numeric>
#include <string>

using namespace strata;
using Catch::Matchers::Contains;

namespace {

using Layer = Sequential<Dense<>, ReLU, Dropout>;
/// A small two-subnetwork model: one branch, one shared encoder over two slices, a head.
using Net = Sequential<Fork<Branch<Layer>, Shared<Layer, Slice<>, Slice<>>>, Dense<>, Tanh, Dense<1>>;

Net make_net(Index width = 8) {
  const Layer layer{Dense<>{width}, ReLU{}, Dropout{0.1}};
  return Net{{Branch<Layer>{Slice<>{0, 3}, layer}, Shared<Layer, Slice<>, Slice<>>{layer, Slice<>{3, 7}, Slice<>{7, 11}}},
             Dense<>{6}, Tanh{}, Dense<1>{}};
}

MatrixDataset<float> make_data(Index n, std::uint64_t salt) { return strata::testing::toy_regression(11, n, salt); }

template <class Strategy>
Trainer<Net, MSE, Adam, Strategy> make_trainer(Strategy strategy, Index width = 8) {
  Model<Net> model(make_net(width));
  model.build(11, 3);
  trainer_options options;
  options.batch_size = 32;
  options.seed = 4;
  return Trainer<Net, MSE, Adam, Strategy>(std::move(model), MSE{}, Adam{1e-2}, std::move(strategy), options);
}

template <class Trainer>
std::vector<float> weights(Trainer& t) {
  std::vector<float> w;
  for (auto& p : t.model().parameters()) w.insert(w.end(), p.value->data(), p.value->data() + p.value->size());
  for (auto& b : t.model().buffers()) w.insert(w.end(), b.value->data(), b.value->data() + b.value->size());
  return w;
}

data_parallel_options deterministic(Index blocks = 8) {
  data_parallel_options o;
  o.deterministic = true;
  o.blocks = blocks;
  return o;
}

}  // namespace

TEST_CASE("Collectives move the right values, in pieces when large") {
  MpiCommunicator comm;
  const int p = comm.size(), r = comm.rank();

  SECTION("all-reduce of 20 MB (two pieces) and of one double") {
    std::vector<float> v(5'000'000);
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(r + static_cast<int>(i % 7));
    comm.all_reduce_sum(v.data(), v.size());
    bool all = true;
    for (std::size_t i = 0; i < v.size(); ++i) all = all && v[i] == static_cast<float>(p * static_cast<int>(i % 7) + p * (p - 1) / 2);
    CHECK(all);
    double d = 0.25 * (r + 1);
    comm.all_reduce_sum(&d, 1);
    CHECK(d == 0.125 * p * (p + 1));
  }
  SECTION("non-blocking all-reduce") {
    auto v = std::make_shared<std::vector<double>>(1000, 1.0 + r);
    auto request = comm.iall_reduce_sum(v);
    request.wait();
    CHECK((*v)[999] == p * (p + 1) / 2.0);
  }
  SECTION("a request dropped in flight keeps its buffer until MPI is done with it") {
    auto v = std::make_shared<std::vector<float>>(std::size_t{1} << 20, 1.0f);
    const std::weak_ptr<std::vector<float>> watch = v;
    { auto dropped = comm.iall_reduce_sum(std::move(v)); }  // as a rank unwinding after an error
    // (Whether it is still running here depends on MPI; under the sanitizers a buffer freed
    // under the transfer would be reported.) Released once complete: the next non-blocking operations (the same count on every rank)
    // let MPI finish it, and the one after frees it.
    for (int k = 0; k < 3; ++k) comm.iall_reduce_sum(std::make_shared<std::vector<float>>(1)).wait();
    CHECK(watch.expired());
  }
  SECTION("reduce-scatter with uneven blocks, small and large") {
    for (const std::size_t scale : {std::size_t{1}, std::size_t{1'500'000}}) {
      std::vector<std::size_t> counts;
      for (int q = 0; q < p; ++q) counts.push_back(scale * static_cast<std::size_t>(q + 2));
      const std::size_t total = std::accumulate(counts.begin(), counts.end(), std::size_t{0});
      std::vector<double> in(total), out(counts[static_cast<std::size_t>(r)]);
      for (std::size_t k = 0; k < total; ++k) in[k] = static_cast<double>((r + 1) * static_cast<long>(k % 1000 + 1));
      comm.reduce_scatter_sum(in.data(), out.data(), counts);
      const std::size_t offset = std::accumulate(counts.begin(), counts.begin() + r, std::size_t{0});
      bool all = true;
      for (std::size_t j = 0; j < out.size(); ++j)
        all = all && out[j] == static_cast<double>((offset + j) % 1000 + 1) * p * (p + 1) / 2;
      CHECK(all);
    }
  }
  SECTION("all-gather with uneven contributions") {
    std::vector<std::size_t> counts;
    for (int q = 0; q < p; ++q) counts.push_back(static_cast<std::size_t>(q + 1));
    std::vector<int> mine(static_cast<std::size_t>(r + 1), r), all(static_cast<std::size_t>(p * (p + 1) / 2));
    comm.all_gather(mine.data(), all.data(), counts);
    std::size_t k = 0;
    for (int q = 0; q < p; ++q)
      for (int j = 0; j <= q; ++j) CHECK(all[k++] == q);
  }
  SECTION("broadcast, all-to-all, send/recv and split") {
    std::vector<float> b(10, static_cast<float>(r));
    comm.broadcast(b.data(), b.size(), p - 1);
    CHECK(b[9] == static_cast<float>(p - 1));

    const std::size_t n = 3;
    std::vector<int> in(n * static_cast<std::size_t>(p)), out(in.size());
    for (int q = 0; q < p; ++q)
      for (std::size_t i = 0; i < n; ++i) in[static_cast<std::size_t>(q) * n + i] = r * 1000 + q * 10 + static_cast<int>(i);
    comm.all_to_all(in.data(), out.data(), n);
    for (int q = 0; q < p; ++q)
      for (std::size_t i = 0; i < n; ++i) CHECK(out[static_cast<std::size_t>(q) * n + i] == q * 1000 + r * 10 + static_cast<int>(i));

    if (p > 1) {
      std::vector<double> token(4, r), received(4);
      if (r % 2 == 0) {
        comm.send(token.data(), token.size(), (r + 1) % p, 7);
        comm.recv(received.data(), received.size(), (r + p - 1) % p, 7);
      } else {
        comm.recv(received.data(), received.size(), (r + p - 1) % p, 7);
        comm.send(token.data(), token.size(), (r + 1) % p, 7);
      }
      CHECK(received[3] == (r + p - 1) % p);
    }
    MpiCommunicator half = comm.split(r % 2, r);
    CHECK(half.size() == (p + 1 - r % 2) / 2);
    CHECK(half.rank() == r / 2);
  }
}

TEST_CASE("Data-parallel training equals serial training with the same global batch") {
  const auto train = make_data(256, 1), validation = make_data(96, 2);
  auto serial = make_trainer(Serial{});
  serial.fit(train, 3);
  data_parallel_options o;
  o.bucket_bytes = 256;  // many buckets, started during backward
  auto parallel = make_trainer(DataParallel<MpiCommunicator>(MpiCommunicator{}, o));
  parallel.fit(train, 3);
  const auto a = weights(serial), b = weights(parallel);
  REQUIRE(a.size() == b.size());
  double worst = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(static_cast<double>(a[i]) - b[i]) / (1.0 + std::abs(a[i])));
  INFO("largest relative difference " << worst);
  CHECK(worst < 1e-5);
  CHECK(parallel.step() == serial.step());

  // Every rank reports the global figures.
  const evaluation es = serial.evaluate(validation), ep = parallel.evaluate(validation);
  CHECK(ep.loss == Approx(es.loss).epsilon(1e-4));
  CHECK(ep.metrics.at("r2") == Approx(es.metrics.at("r2")).epsilon(1e-4));
}

TEST_CASE("Deterministic data parallelism gives the bits of a one-rank run") {
  const auto train = make_data(261, 1);  // the last batch of each epoch has 5 samples for 8 blocks
  auto one = make_trainer(DataParallel<SerialCommunicator>(SerialCommunicator{}, deterministic()));
  auto many = make_trainer(DataParallel<MpiCommunicator>(MpiCommunicator{}, deterministic()));
  const auto initial = weights(one);
  one.fit(train, 3);
  many.fit(train, 3);
  CHECK(weights(one) != initial);
  CHECK(weights(many) == weights(one));

  // The same strategy chosen by type: the type's reduction and sharding override the options'.
  data_parallel_options blocks_only;
  blocks_only.blocks = 8;
  auto typed = make_trainer(DataParallel<MpiCommunicator, DeterministicTree, ShardedOptimizer>(MpiCommunicator{}, blocks_only));
  CHECK(typed.strategy().deterministic());
  CHECK(typed.strategy().options().shard_optimizer);
  typed.fit(train, 3);
  CHECK(weights(typed) == weights(one));

  SECTION("and a checkpoint written by one rank count resumes on another to the same bits") {
    const std::string path = "strata_dp_resume_rank" + std::to_string(MpiCommunicator{}.rank()) + ".ck";
    auto first = make_trainer(DataParallel<SerialCommunicator>(SerialCommunicator{}, deterministic()));
    first.fit(train, 2);
    first.save(path);
    auto resumed = make_trainer(DataParallel<MpiCommunicator>(MpiCommunicator{}, deterministic()));
    resumed.load(path);
    resumed.fit(train, 3);
    std::remove(path.c_str());
    CHECK(weights(resumed) == weights(one));
  }
}

TEST_CASE("Deterministic mode needs blocks that the ranks divide") {
  CHECK_THROWS_WITH(DataParallel<SerialCommunicator>(SerialCommunicator{}, deterministic(6)),
                    Contains("powers of two"));
  if (MpiCommunicator{}.size() == 4)
    CHECK_THROWS_WITH(DataParallel<MpiCommunicator>(MpiCommunicator{}, deterministic(2)), Contains("2 sample blocks over 4 ranks"));
}

TEST_CASE("Ranks that built different models fail together at start-up") {
  MpiCommunicator comm;
  if (comm.size() == 1) return;
  const Index width = comm.rank() == 1 ? 9 : 8;
  CHECK_THROWS_WITH(make_trainer(DataParallel<MpiCommunicator>(comm), width), Contains("built a different model"));

  // Same shapes, another activation: only the architecture's type tells them apart.
  using TanhHead = Sequential<Dense<4>, Tanh, Dense<1>>;
  using ReluHead = Sequential<Dense<4>, ReLU, Dense<1>>;
  const auto start = [&](auto spec) {
    Model<decltype(spec)> model(spec);
    model.build(11, 1);
    Trainer<decltype(spec), MSE, Adam, DataParallel<MpiCommunicator>> t(std::move(model), MSE{}, Adam{},
                                                                        DataParallel<MpiCommunicator>(comm));
  };
  const auto mixed = [&] { comm.rank() == 1 ? start(ReluHead{}) : start(TanhHead{}); };
  CHECK_THROWS_WITH(mixed(), Contains("built a different model"));

  // A different learning rate on one rank would let the replicas drift apart silently.
  const auto drift = [&] {
    Model<TanhHead> model;
    model.build(11, 1);
    Trainer<TanhHead, MSE, Adam, DataParallel<MpiCommunicator>> t(std::move(model), MSE{}, Adam{comm.rank() == 1 ? 2e-3 : 1e-3},
                                                                  DataParallel<MpiCommunicator>(comm));
  };
  CHECK_THROWS_WITH(drift(), Contains("built a different model"));
}

TEST_CASE("ZeRO-1 keeps 1/P of the optimizer state and gives the weights of plain data parallelism") {
  const auto train = make_data(256, 1);
  const int p = MpiCommunicator{}.size();
  data_parallel_options sharded;
  sharded.shard_optimizer = true;

  SECTION("fast mode, to float rounding") {
    auto plain = make_trainer(DataParallel<MpiCommunicator>(MpiCommunicator{}));
    auto zero = make_trainer(DataParallel<MpiCommunicator>(MpiCommunicator{}, sharded));
    plain.fit(train, 2);
    zero.fit(train, 2);
    const auto a = weights(plain), b = weights(zero);
    double worst = 0.0;
    for (std::size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(static_cast<double>(a[i]) - b[i]) / (1.0 + std::abs(a[i])));
    CHECK(worst < 1e-5);

    // Adam's two moments: 2 N values without sharding, at most 2 ceil(M / P) per rank with it
    // (M: the parameter buffer's elements, N plus each tensor's alignment padding; the last
    // rank's shard ends with the buffer), 2 N over all ranks.
    const Index n = plain.model().parameter_count(), m = zero.model().parameters().buffer_size();
    CHECK(m < n + 16 * static_cast<Index>(zero.model().parameters().size()));
    Index state = 0;
    zero.optimizer().for_each_state([&](const std::string&, matrix_f& s) { state += s.size(); });
    CHECK(state <= 2 * ((m + p - 1) / p));
    double total = static_cast<double>(state);
    MpiCommunicator{}.all_reduce_sum(&total, 1);
    CHECK(total == 2.0 * static_cast<double>(n));
    Index unsharded = 0;
    plain.optimizer().for_each_state([&](const std::string&, matrix_f& m) { unsharded += m.size(); });
    CHECK(unsharded == 2 * n);
  }
  SECTION("deterministic mode, bit for bit, and checkpoints move between sharded and plain runs") {
    sharded = deterministic();
    sharded.shard_optimizer = true;
    auto plain = make_trainer(DataParallel<MpiCommunicator>(MpiCommunicator{}, deterministic()));
    auto zero = make_trainer(DataParallel<MpiCommunicator>(MpiCommunicator{}, sharded));
    plain.fit(train, 3);
    zero.fit(train, 2);
    const std::string path = "strata_zero_resume.ck";  // written by rank 0, read by all ranks
    zero.save(path);
    MpiCommunicator{}.barrier();
    auto resumed = make_trainer(DataParallel<MpiCommunicator>(MpiCommunicator{}, deterministic()));
    resumed.load(path);
    resumed.fit(train, 3);
    zero.fit(train, 3);
    MpiCommunicator{}.barrier();
    if (MpiCommunicator{}.rank() == 0) std::remove(path.c_str());
    CHECK(weights(zero) == weights(plain));
    CHECK(weights(resumed) == weights(plain));
  }
}

TEST_CASE("ZeRO-1 hands the optimizer per-tensor pieces: groups and norm clipping match plain data parallelism") {
  const auto train = make_data(256, 1);
  const auto start = [](data_parallel_options o) {
    Model<Net> model(make_net());
    model.build(11, 3);
    model.set_group("*.bias", {1.0, false});  // no decay on the biases
    model.set_group("1:Dense", {0.1});        // a slow layer (later calls override earlier ones)
    model.freeze("0:Fork/1:Shared");          // a frozen encoder
    trainer_options options;
    options.batch_size = 32;
    options.seed = 4;
    options.clip_norm = 0.05;  // small enough to clip every step
    return Trainer<Net, MSE, AdamW, DataParallel<MpiCommunicator>>(std::move(model), MSE{}, AdamW{1e-2, 0.9, 0.999, 1e-8, 0.1},
                                                                   DataParallel<MpiCommunicator>(MpiCommunicator{}, o));
  };
  data_parallel_options sharded = deterministic();
  sharded.shard_optimizer = true;
  auto plain = start(deterministic());
  auto zero = start(sharded);
  const auto initial = weights(plain);
  plain.fit(train, 2);
  zero.fit(train, 2);
  const auto a = weights(plain), b = weights(zero);
  // The clipping norm is summed over the ranks' pieces with sharding, in another order.
  double worst = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(static_cast<double>(a[i]) - b[i]) / (1.0 + std::abs(a[i])));
  INFO("largest relative difference " << worst);
  CHECK(worst < 1e-6);
  // The shared encoder's tensors are unchanged in both runs; the rest moved.
  std::size_t at = 0, frozen = 0, moved = 0;
  for (auto& p : zero.model().parameters()) {
    const auto n = static_cast<std::size_t>(p.value->size());
    const bool same = std::equal(b.begin() + at, b.begin() + at + n, initial.begin() + at);
    if (p.name.find("1:Shared") != std::string::npos) frozen += same; else moved += !same;
    at += n;
  }
  CHECK(frozen == 2);
  CHECK(moved == zero.model().parameters().size() - 2);
}

TEST_CASE("BatchNorm running statistics are the same on every rank after data-parallel steps") {
  using Normed = Sequential<Dense<6>, BatchNorm, ReLU, Dense<1>>;
  Model<Normed> model;
  model.build(11, 2);
  trainer_options options;
  options.batch_size = 32;
  Trainer<Normed, MSE, Adam, DataParallel<MpiCommunicator>> trainer(std::move(model), MSE{}, Adam{}, DataParallel<MpiCommunicator>{},
                                                                    options);
  trainer.fit(make_data(256, 3), 1);
  MpiCommunicator comm;
  std::vector<float> mine;
  for (auto& b : trainer.model().buffers()) mine.insert(mine.end(), b.value->data(), b.value->data() + b.value->size());
  std::vector<float> root = mine;
  comm.broadcast(root.data(), root.size(), 0);
  CHECK(mine == root);
}
