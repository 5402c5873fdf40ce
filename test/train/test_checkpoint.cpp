// Checkpoints: resuming equals never stopping, and every way a file can be wrong is reported
// clearly without touching the trainer.
#include <catch2/catch.hpp>

#include <strata/strata.hpp>
#include <strata/data/dataset.hpp>
#include <strata/optim/sgd.hpp>
#include <strata/train/trainer.hpp>

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
