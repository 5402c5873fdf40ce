// Composition: gradients through every combinator, and the semantics each one promises
// (concatenation order, weight sharing, skip connections, seeding).
#include <catch2/catch.hpp>

#include <strata/strata.hpp>

#include "../support/gradient_check.hpp"

using namespace strata;
using strata::testing::check_gradients;
using strata::testing::random_matrix;

namespace {
using Block = Sequential<Dense<>, Tanh>;
using TwoBranches = Fork<Branch<Block>, Branch<Block>>;
using SharedPair = Shared<Block, Slice<>, Slice<>>;
using MiniCombo = Sequential<Fork<Branch<Repeat<2, Sequential<Dense<>, ReLU, Dropout>>>,
                                  Shared<Repeat<2, Sequential<Dense<>, ReLU, Dropout>>, Slice<>, Slice<>>>,
                             Dense<>, ELU, Dense<1>>;

Block block(Index width) { return Block{Dense<>{width}, Tanh{}}; }

MiniCombo mini_combo(Index cell, Index drug) {
  using Encoder = Repeat<2, Sequential<Dense<>, ReLU, Dropout>>;
  const Encoder encoder{Sequential<Dense<>, ReLU, Dropout>{Dense<>{6}, ReLU{}, Dropout{0.2}}};
  return MiniCombo{Fork<Branch<Encoder>, Shared<Encoder, Slice<>, Slice<>>>{
                       Branch<Encoder>{Slice<>{0, cell}, encoder},
                       Shared<Encoder, Slice<>, Slice<>>{encoder, Slice<>{cell, cell + drug}, Slice<>{cell + drug, cell + 2 * drug}}},
                   Dense<>{5}, ELU{}, Dense<1>{}};
}
}  // namespace

TEST_CASE("Gradients through every combinator match finite differences") {
  SECTION("Sequential") { check_gradients(Sequential<Dense<>, Sigmoid, Dense<2>>{Dense<>{4}, Sigmoid{}, Dense<2>{}}, 3, 4); }
  SECTION("Repeat") { check_gradients(Repeat<3, Block>{block(4)}, 4, 3); }
  SECTION("Slice") { check_gradients(Slice<2, 5>{}, 7, 3); }
  SECTION("Fork of branches over overlapping slices") {
    check_gradients(TwoBranches{Branch<Block>{Slice<>{0, 4}, block(3)}, Branch<Block>{Slice<>{2, 7}, block(2)}}, 7, 3);
  }
  SECTION("Shared") { check_gradients(SharedPair{block(3), Slice<>{0, 4}, Slice<>{4, 8}}, 9, 3); }
  SECTION("Residual") { check_gradients(Residual<Block>{block(5)}, 5, 3); }
  SECTION("the two-subnetwork drug-response shape, with dropout") { check_gradients(mini_combo(4, 3), 10, 5); }
}

namespace {
/// Forward and backward of `fused` and `apart` (the same network with Identity layers keeping
/// every ReLU from its Dropout, so nothing fuses) on one batch with negatives and exact zeros:
/// outputs, input gradients and parameter gradients must agree bit for bit.
template <class Fused, class Apart>
void check_fusion_is_exact(Fused fused_spec, Apart apart_spec, Index inputs) {
  Model<Fused, EigenBackend<float>> fused(std::move(fused_spec));
  Model<Apart, EigenBackend<float>> apart(std::move(apart_spec));
  fused.build(inputs, 17);
  apart.build(inputs, 17);
  matrix_f x = random_matrix(inputs, 9, 3).cast<float>();
  x(0, 0) = 0.0f;
  x(1, 2) = -0.0f;
  pass_info train;
  train.step = 4;
  const matrix_f y = fused.forward(x, train);
  REQUIRE(apart.forward(x, train) == y);
  CHECK((y.array() == 0.0f).count() > 0);  // some units rectified or dropped
  const matrix_f dy = random_matrix(y.rows(), y.cols(), 5).cast<float>();
  const matrix_f dx = fused.backward(dy, true);
  CHECK(apart.backward(dy, true) == dx);
  auto& p = fused.parameters();
  auto& q = apart.parameters();
  REQUIRE(p.buffer_size() == q.buffer_size());
  for (Index i = 0; i < p.buffer_size(); ++i) REQUIRE(p.gradients()[i] == q.gradients()[i]);
}
}  // namespace

TEST_CASE("ReLU followed by Dropout runs as one pass with the two layers' results, bit for bit") {
  SECTION("after a Dense layer (the hidden layer of every drug-response model)") {
    check_fusion_is_exact(Sequential<Dense<>, ReLU, Dropout>{Dense<>{6}, ReLU{}, Dropout{0.3}},
                          Sequential<Dense<>, ReLU, Identity, Dropout>{Dense<>{6}, ReLU{}, Identity{}, Dropout{0.3}}, 5);
  }
  SECTION("at the start of a Sequential, and twice in a row") {
    check_fusion_is_exact(Sequential<ReLU, Dropout, ReLU, Dropout>{ReLU{}, Dropout{0.2}, ReLU{}, Dropout{0.4}},
                          Sequential<ReLU, Identity, Dropout, ReLU, Identity, Dropout>{ReLU{}, Identity{}, Dropout{0.2}, ReLU{},
                                                                                       Identity{}, Dropout{0.4}},
                          7);
  }
  SECTION("a width that is not a multiple of 4 (the last Philox block serves 3 rows)") {
    check_fusion_is_exact(Sequential<Dense<>, ReLU, Dropout>{Dense<>{7}, ReLU{}, Dropout{0.5}},
                          Sequential<Dense<>, ReLU, Identity, Dropout>{Dense<>{7}, ReLU{}, Identity{}, Dropout{0.5}}, 4);
  }
}

TEST_CASE("Fork concatenates its branches' outputs in order") {
  using F = Fork<Branch<Identity, Slice<3, 5>>, Branch<Identity, Slice<0, 2>>>;
  Model<F, EigenBackend<double>> model;
  model.build(5, 1);
  matrix_d x = random_matrix(5, 2, 4);
  const matrix_d y = model.forward(x);
  REQUIRE(y.rows() == 4);
  CHECK(y.topRows(2) == x.middleRows(3, 2));
  CHECK(y.bottomRows(2) == x.topRows(2));
}

TEST_CASE("Shared applies one set of weights to every slice, and gradients add up") {
  Model<SharedPair, EigenBackend<double>> shared(SharedPair{block(3), Slice<>{0, 4}, Slice<>{4, 8}});
  shared.build(8, 11);
  REQUIRE(shared.parameters().size() == 2);  // one Dense: weight and bias, not two sets

  // The same block as two independent branches, given the shared weights.
  Model<TwoBranches, EigenBackend<double>> separate(TwoBranches{Branch<Block>{Slice<>{0, 4}, block(3)}, Branch<Block>{Slice<>{4, 8}, block(3)}});
  separate.build(8, 99);
  auto& sp = shared.parameters();
  auto& bp = separate.parameters();
  for (std::size_t k = 0; k < 2; ++k) {
    *bp[k].value = *sp[k].value;
    *bp[k + 2].value = *sp[k].value;
  }

  const matrix_d x = random_matrix(8, 5, 2);
  CHECK(shared.forward(x).isApprox(separate.forward(x), 1e-14));
  const matrix_d dy = random_matrix(6, 5, 3);
  shared.backward(dy);
  separate.backward(dy);
  for (std::size_t k = 0; k < 2; ++k) CHECK(sp[k].gradient->isApprox(*bp[k].gradient + *bp[k + 2].gradient, 1e-12));
}

TEST_CASE("Residual adds its input to the inner network's output") {
  Model<Residual<Block>, EigenBackend<double>> model(Residual<Block>{block(4)});
  model.build(4, 1);
  const matrix_d x = random_matrix(4, 3, 1);
  const matrix_d inner = ((*model.parameters()[0].value) * x).colwise() + model.parameters()[1].value->col(0);
  CHECK(model.forward(x).isApprox(x + inner.array().tanh().matrix(), 1e-14));
}

TEST_CASE("Weights depend only on the seed") {
  auto weights = [](std::uint64_t seed) {
    Model<MiniCombo> model(mini_combo(4, 3));
    model.build(10, seed);
    std::vector<matrix_f> out;
    for (auto& p : model.parameters()) out.push_back(*p.value);
    return out;
  };
  CHECK(weights(7) == weights(7));
  CHECK(weights(7) != weights(8));
  Model<MiniCombo> model(mini_combo(4, 3));
  model.build(10, 7);
  CHECK(model.parameter_count() == (6 * 4 + 6) + (6 * 6 + 6) + (6 * 3 + 6) + (6 * 6 + 6) + (5 * 18 + 5) + (5 + 1));
}

TEST_CASE("The Combo model is one type with the published parameter count") {
  // Xia et al. / CANDLE Combo: 921 cell features, 3,829 features per drug, 1,000-wide layers.
  using Layer = Sequential<Dense<1000>, ReLU, Dropout>;
  using Encoder = Repeat<3, Layer>;
  using Combo = Sequential<Input<8579>,
                           Fork<Branch<Encoder, Slice<0, 921>>, Shared<Encoder, Slice<921, 4750>, Slice<4750, 8579>>>,
                           Encoder, Dense<1>>;
  static_assert(Model<Combo>::static_output_width == 1);
  const Layer layer{Dense<1000>{}, ReLU{}, Dropout{0.05}};
  const Encoder encoder{layer};
  Model<Combo> model(Combo{Input<8579>{}, {Branch<Encoder, Slice<0, 921>>{{}, encoder}, Shared<Encoder, Slice<921, 4750>, Slice<4750, 8579>>{encoder, {}, {}}}, encoder, Dense<1>{}});
  model.build(8579, 1);
  CHECK(model.parameter_count() == 13760001);
}

TEST_CASE("Parameters are views of the model's two contiguous buffers") {
  Model<MiniCombo, EigenBackend<double>> model(mini_combo(4, 3));
  model.build(10, 5);
  auto& store = model.parameters();
  REQUIRE(store.size() > 4);
  Index end = 0;
  for (const auto& p : store) {
    INFO(p.name);
    CHECK(p.offset % parameter_store<EigenBackend<double>>::alignment == 0);
    CHECK(p.offset >= end);  // build order, no overlap
    CHECK(p.value->data() == store.values() + p.offset);
    CHECK(p.gradient->data() == store.gradients() + p.offset);
    end = p.offset + p.value->size();
  }
  CHECK(end <= store.buffer_size());

  // Backward writes the gradient buffer itself; the padding between tensors stays zero.
  const matrix_d x = random_matrix(10, 6, 1);
  model.forward(x);
  model.backward(random_matrix(1, 6, 2));
  std::vector<bool> in_a_tensor(static_cast<std::size_t>(store.buffer_size()), false);
  double in_tensors = 0.0, in_padding = 0.0;
  for (const auto& p : store) {
    in_tensors += p.gradient->array().abs().sum();
    for (Index i = 0; i < p.value->size(); ++i) in_a_tensor[static_cast<std::size_t>(p.offset + i)] = true;
  }
  for (Index i = 0; i < store.buffer_size(); ++i)
    if (!in_a_tensor[static_cast<std::size_t>(i)]) in_padding += std::abs(store.gradients()[i]) + std::abs(store.values()[i]);
  CHECK(in_tensors > 0.0);
  CHECK(in_padding == 0.0);

  // Writing the value buffer is writing the layers' weights.
  const matrix_d before = model.forward(x);
  store.values()[store[0].offset] += 1.0;
  CHECK_FALSE(model.forward(x).isApprox(before));

  // A placed tensor keeps its shape.
  CHECK_THROWS_AS(store[0].value->resize(1, 1), shape_error);
}
