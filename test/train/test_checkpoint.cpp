// Checkpoints: resuming equals never stopping, and every way a file can be wrong is reported
// clearly without touching the trainer.
#include <catch2/catch.hpp>

#include <strata/strata.hpp>
#include <strata/data/dataset.hpp>
#include <strata/optim/sgd.hpp>
#include <strata/train/model_file.hpp>
#include <strata/train/trainer.hpp>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>

using namespace strata;
using Catch::Matchers::Contains;

namespace {
using Net = Sequential<Dense<16>, ReLU, Dropout, BatchNorm, Dense<1>>;

MatrixDataset<float> data(Index n) {
  const random_stream rng(9, purpose::data);
  matrix_f x(4, n), y(1, n);
  for (Index i = 0; i < x.size(); ++i) x.data()[i] = static_cast<float>(rng.normal(static_cast<std::uint64_t>(i)));
  y = (x.colwise().sum().array() * 0.5f).matrix();
  return {x, y};
}

template <class Opt = Adam, class Spec = Net>
Trainer<Spec, MSE, Opt> trainer(Index input = 4, Spec spec = Net{Dense<16>{}, ReLU{}, Dropout{0.1}, BatchNorm{}, Dense<1>{}}) {
  Model<Spec> model(spec);
  model.build(input, 3);
  trainer_options options;
  options.batch_size = 32;
  return Trainer<Spec, MSE, Opt>(std::move(model), MSE{}, Opt{}, Serial{}, options);
}

std::vector<matrix_f> weights(Trainer<Net>& t) {
  std::vector<matrix_f> w;
  for (auto& p : t.model().parameters()) w.push_back(*p.value);
  for (auto& b : t.model().buffers()) w.push_back(*b.value);
  return w;
}

struct temp_file {
  std::string path;
  explicit temp_file(std::string p) : path(std::move(p)) {}
  ~temp_file() { std::remove(path.c_str()); }
};

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
void write_all(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}
}  // namespace

TEST_CASE("Resuming from a checkpoint gives the weights of an uninterrupted run, bit for bit") {
  const auto train = data(200);
  temp_file file("strata_test_resume.ck");
  auto uninterrupted = trainer();
  uninterrupted.fit(train, 4);

  auto first = trainer();
  first.fit(train, 2);
  first.save(file.path);

  auto resumed = trainer();  // a fresh process would start exactly like this
  resumed.load(file.path);
  CHECK(resumed.epoch() == 2);
  CHECK(resumed.step() == first.step());
  resumed.fit(train, 4);
  CHECK(weights(resumed) == weights(uninterrupted));
}

namespace {
/// Simulates a crash: throws from inside the training loop after `step` steps.
struct crash_after : callback {
  std::uint64_t step;
  explicit crash_after(std::uint64_t s) : step(s) {}
  void on_batch_end(const batch_progress& p) override {
    if (p.step == step) throw std::runtime_error("simulated crash");
  }
};
}  // namespace

TEST_CASE("A run that dies mid-epoch resumes from its last checkpoint to the same weights and losses") {
  const auto train = data(200);  // 7 batches of 32 per epoch
  temp_file file("strata_test_mid_epoch.ck");
  auto uninterrupted = trainer();
  const auto expected = uninterrupted.fit(train, 3);

  auto crashing = [&] {
    Model<Net> model(Net{Dense<16>{}, ReLU{}, Dropout{0.1}, BatchNorm{}, Dense<1>{}});
    model.build(4, 3);
    trainer_options options;
    options.batch_size = 32;
    options.checkpoint_path = file.path;
    options.checkpoint_every = 3;
    return Trainer<Net>(std::move(model), MSE{}, Adam{}, Serial{}, options);
  };
  auto first = crashing();
  checkpoint extras;
  extras.meta["note"] = "kept";
  extras.add("scaler/mean", matrix_f(matrix_f::Constant(2, 1, 1.5f)));
  first.set_checkpoint_extras(extras);
  for (const char* reserved : {"epoch", "learning_rate", "optimizer", "input_width", "setting/model/2:Dropout.rate"}) {
    checkpoint clash = extras;
    clash.meta[reserved] = "mine";
    CHECK_THROWS_WITH(first.set_checkpoint_extras(clash), Contains(reserved) && Contains("trainer's own"));
  }
  checkpoint tensor_clash = extras;
  tensor_clash.add("optimizer/scaler", matrix_f(matrix_f::Zero(1, 1)));
  CHECK_THROWS_WITH(first.set_checkpoint_extras(tensor_clash), Contains("optimizer/scaler"));
  first.add_callback(std::make_shared<crash_after>(11));  // epoch 2, batch 5; last checkpoint at step 9
  CHECK_THROWS_WITH(first.fit(train, 3), "simulated crash");

  auto resumed = crashing();
  const checkpoint file_content = resumed.load(file.path);
  CHECK(resumed.step() == 9);
  CHECK(resumed.epoch() == 1);
  CHECK(file_content.meta.at("note") == "kept");
  REQUIRE(file_content.find("scaler/mean") != nullptr);
  const auto history = resumed.fit(train, 3);
  REQUIRE(history.size() == 2);
  CHECK(history[0].train_loss == expected[1].train_loss);
  CHECK(history[1].train_loss == expected[2].train_loss);
  CHECK(weights(resumed) == weights(uninterrupted));

  SECTION("resuming mid-epoch with another batch size is refused") {
    auto other = trainer();  // batch 32 too, but write a checkpoint claiming 64
    checkpoint edited = checkpoint::read(file.path);
    edited.meta["batch_size"] = "64";
    edited.meta["batch_in_epoch"] = "2";
    edited.write(file.path);
    CHECK_THROWS_WITH(other.load(file.path), Contains("written mid-epoch with batch size 64"));
  }
}

TEST_CASE("Bad checkpoints are rejected with a message that says what is wrong") {
  const auto train = data(64);
  temp_file file("strata_test_bad.ck");
  auto source = trainer();
  source.fit(train, 1);
  source.save(file.path);
  const std::string good = read_all(file.path);

  auto target = trainer();
  const auto before = weights(target);

  SECTION("a missing file") { CHECK_THROWS_WITH(target.load("no/such/file.ck"), Contains("cannot open 'no/such/file.ck'")); }
  SECTION("a file that is not a checkpoint") {
    write_all(file.path, "hello, world");
    CHECK_THROWS_WITH(target.load(file.path), Contains("not a Strata checkpoint"));
  }
  SECTION("a truncated file") {
    write_all(file.path, good.substr(0, good.size() / 2));
    CHECK_THROWS_WITH(target.load(file.path), Contains("truncated"));
  }
  SECTION("a corrupted byte") {
    std::string bad = good;
    bad[bad.size() / 2] = static_cast<char>(bad[bad.size() / 2] ^ 0x40);
    write_all(file.path, bad);
    CHECK_THROWS_WITH(target.load(file.path), Contains("checksum mismatch"));
  }
  SECTION("a payload size that would wrap the file length around 2^64") {
    std::string bad(checkpoint::magic, sizeof checkpoint::magic);
    const std::uint32_t version = checkpoint::version;
    const std::uint64_t size = ~std::uint64_t{0};  // 20 + size + 8 wraps to 27, this file's length
    bad.append(reinterpret_cast<const char*>(&version), sizeof version);
    bad.append(reinterpret_cast<const char*>(&size), sizeof size);
    bad.append(7, '\0');
    write_all(file.path, bad);
    CHECK_THROWS_WITH(target.load(file.path), Contains("truncated or padded: 27 bytes") &&
                                                  Contains("promises 18446744073709551615 bytes of content"));
  }
  SECTION("a tensor claiming more rows than the file holds is an error, not an allocation") {
    checkpoint bad;  // a correct checksum over a shape the data does not back
    bad.tensors.push_back({"huge", 4, std::int64_t{1} << 40, 1, {}});
    write_all(file.path, bad.to_bytes());
    CHECK_THROWS_WITH(target.load(file.path), Contains("tensor 'huge' claims 1099511627776x1 values of 4 bytes, more "
                                                       "than the 0 bytes left in the file"));
  }
  SECTION("a tensor whose rows times columns overflow is an error") {
    checkpoint bad;
    bad.tensors.push_back({"wide", 8, std::int64_t{4575657222465388545}, 4, std::vector<char>(64)});
    write_all(file.path, bad.to_bytes());
    CHECK_THROWS_WITH(target.load(file.path), Contains("tensor 'wide' claims 4575657222465388545x4 values of 8 bytes, "
                                                       "more than the 64 bytes left in the file"));
  }
  SECTION("a negative, partial or non-finite loop position") {
    const std::pair<const char*, const char*> cases[] = {
        {"epoch", "-3"}, {"step", "-1"}, {"batch_in_epoch", "2x"}, {"learning_rate", "nan"}, {"epoch_loss_sum", "inf"}};
    for (const auto& [key, value] : cases) {
      checkpoint bad = checkpoint::read(file.path);
      bad.meta[key] = value;
      const std::string path = file.path + ".bad";
      bad.write(path);
      CHECK_THROWS_WITH(target.load(path), Contains(std::string("has a malformed loop position ('") + key + "' = '" +
                                                    value + "')"));
      std::remove(path.c_str());
    }
  }
  SECTION("a checkpoint of another model") {
    using Other = Sequential<Dense<8>, ReLU, Dense<1>>;
    auto other = trainer<Adam, Other>(4, Other{});
    CHECK_THROWS_WITH(other.load(file.path), Contains("different model") && Contains("model/0:Dense.weight") &&
                                                 Contains("16x4 in the file but 8x4"));
  }
  SECTION("a checkpoint of another optimizer") {
    auto sgd = trainer<SGD>();
    CHECK_THROWS_WITH(sgd.load(file.path), Contains("holds Adam optimizer state but this trainer uses SGD"));
  }
  CHECK_THROWS_AS(target.load("no/such/file.ck"), io_error);
  CHECK(weights(target) == before);  // a failed load changes nothing
}

TEST_CASE("Files from before parameter groups (state layout 1) still load; newer layouts are refused by version") {
  // v1.ck and v1.model were written by Strata 64b0866 (train/compat/README.md): one
  // epoch of Adam on a small net, then the trainer's checkpoint and an inference model file.
  using Small = Sequential<Dense<4>, ReLU, Dropout, Dense<1>>;
  const std::string dir = STRATA_COMPAT_DIR;
  const auto fresh = [] {
    Model<Small> model(Small{Dense<4>{}, ReLU{}, Dropout{0.25}, Dense<1>{}});
    model.build(3, 5);
    return model;
  };
  trainer_options o;
  o.batch_size = 4;
  Trainer<Small> t(fresh(), MSE{}, Adam{1e-2}, Serial{}, o);
  t.model().freeze("0:Dense");  // a file without groups leaves the trainer's as they are
  const checkpoint file = t.load(dir + "/v1.ck");
  CHECK(t.epoch() == 1);
  CHECK(t.step() == 2);
  CHECK(t.optimizer().step_count() == 2);
  CHECK(t.model().parameters()[0].group.frozen());
  matrix_f expected;
  checkpoint::extract(*file.find("parameter/model/3:Dense.weight"), expected);
  CHECK(*t.model().parameters()[2].value == expected);
  std::size_t moments = 0;
  t.optimizer().for_each_state([&](const std::string&, matrix_f& m) { moments += !m.isZero(0.0); });
  CHECK(moments == 8);  // both moments of all four tensors came back

  Model<Small> inference = fresh();
  const auto meta = load_model(inference, dir + "/v1.model", "compat-test");
  CHECK(meta.at("kind") == "compat-test");
  CHECK(*inference.parameters()[2].value == expected);

  SECTION("a file of a newer layout says so") {
    checkpoint newer = checkpoint::read(dir + "/v1.ck");
    newer.meta["state_version"] = "3";
    temp_file path("strata_newer_layout.ck");
    newer.write(path.path);
    CHECK_THROWS_WITH(t.load(path.path), Contains("layout version 3") && Contains("this build reads versions 1 to 2"));
  }
}
