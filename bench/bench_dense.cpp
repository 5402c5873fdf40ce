// Dense-layer and training-step throughput on the Combo model's shapes (batch 256) and the
// docking models' (batch 8,192 inference):
//   BM_dense_forward/in/out/batch       one layer's forward; GFLOP/s and % of this machine's FMA
//                                       peak (measured at start-up on the same threads)
//   BM_dense_backward/in/out/batch/dx   weight, bias and (dx = 1) input gradients; the Combo
//                                       layers that read the input (921 and 3,829 wide) need none
//   BM_combo_train_step         forward + backward + Adam on the full 13.76 M-parameter model;
//                               reports samples/s
//   BM_adam_step                the Adam step alone over those parameters, in GB/s of traffic
//   BM_relu_forward, BM_dropout_forward   element-wise layers on one hidden activation, GB/s
//   BM_gather_drug_response     a minibatch of 256 (cell, drug, drug) tuples gathered from the
//                               entity tables into one 8,579 x 256 batch, GB/s written
// Run: build/bench/bench_dense --benchmark_min_time=0.5 (threads: OMP_NUM_THREADS and
// OPENBLAS_NUM_THREADS; mind OPENBLAS_CORETYPE, see the toolchain notes)
#include <benchmark/benchmark.h>

#include <strata/strata.hpp>
#include <strata/data/drug_response.hpp>
#include <strata/data/synthetic_drug_response.hpp>
#include <strata/models/combo.hpp>
#include <strata/optim/adam.hpp>

#include "fma_peak.hpp"

using namespace strata;

namespace {
constexpr Index batch = 256;

matrix_f random_batch(Index rows, Index cols) {
  const random_stream rng(1, purpose::user);
  matrix_f m(rows, cols);
  for (Index i = 0; i < m.size(); ++i) m.data()[i] = static_cast<float>(rng.normal(static_cast<std::uint64_t>(i)));
  return m;
}

/// GFLOP/s and percent of the FMA peak for `flops` per iteration.
void report_flops(benchmark::State& state, double flops) {
  static const double peak = bench::measured_peak();
  state.counters["GFLOP/s"] = benchmark::Counter(flops, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
  state.counters["% of peak"] = benchmark::Counter(100.0 * flops / peak, benchmark::Counter::kIsIterationInvariantRate);
}

void BM_dense_forward(benchmark::State& state) {
  const Index in = state.range(0), out = state.range(1), n = state.range(2);
  Model<Dense<>> model(Dense<>{out});
  model.build(in, 1);
  const matrix_f x = random_batch(in, n);
  for (auto _ : state) benchmark::DoNotOptimize(model.forward(x).data());
  report_flops(state, 2.0 * static_cast<double>(in * out * n));
}
// Combo: cell and drug encoders' first layers, hidden layers, the stack's first layer; docking:
// the descriptor and fingerprint models' widest dense layers at the screening batch.
BENCHMARK(BM_dense_forward)
    ->Args({921, 1000, batch})->Args({3829, 1000, batch})->Args({1000, 1000, batch})->Args({3000, 1000, batch})
    ->Args({1613, 250, 8192})->Args({1024, 256, 8192})->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_dense_backward(benchmark::State& state) {
  const Index in = state.range(0), out = state.range(1), n = state.range(2);
  const bool need_dx = state.range(3) != 0;
  Model<Dense<>> model(Dense<>{out});
  model.build(in, 1);
  const matrix_f x = random_batch(in, n), dy = random_batch(out, n);
  model.forward(x);
  for (auto _ : state) benchmark::DoNotOptimize(model.backward(dy, need_dx).data());
  report_flops(state, (need_dx ? 4.0 : 2.0) * static_cast<double>(in * out * n));
}
BENCHMARK(BM_dense_backward)
    ->Args({921, 1000, batch, 0})->Args({3829, 1000, batch, 0})->Args({1000, 1000, batch, 1})->Args({3000, 1000, batch, 1})
    ->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_combo_train_step(benchmark::State& state) {
  Model<Combo> model(make_combo(combo_options{}));
  model.build(8579, 1);
  auto slices = whole_slices(model.parameters());
  Adam::impl<EigenBackend<float>> adam(Adam{}, slices);
  const matrix_f x = random_batch(8579, batch);
  const matrix_f dy = random_batch(1, batch) / static_cast<float>(batch);
  pass_info pass;
  for (auto _ : state) {
    model.forward(x, pass);
    model.backward(dy);
    adam.step(slices, 1e-3);
    ++pass.step;
  }
  state.counters["samples/s"] = benchmark::Counter(static_cast<double>(batch), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_combo_train_step)->Unit(benchmark::kMillisecond)->UseRealTime();
/// One Adam step over the Combo model's 13.76 M parameters: reads weights, gradients and both
/// moments and writes weights and moments back, 28 bytes per parameter; GB/s against that traffic
/// (compare with bench_peak's memory triad).
void BM_adam_step(benchmark::State& state) {
  Model<Combo> model(make_combo(combo_options{}));
  model.build(8579, 1);
  for (auto& p : model.parameters()) p.gradient->setConstant(1e-3f);
  auto slices = whole_slices(model.parameters());
  Adam::impl<EigenBackend<float>> adam(Adam{}, slices);
  for (auto _ : state) adam.step(slices, 1e-3);
  state.counters["GB/s"] = benchmark::Counter(28.0 * static_cast<double>(model.parameter_count()), benchmark::Counter::kIsIterationInvariantRate,
                                              benchmark::Counter::kIs1000);
}
BENCHMARK(BM_adam_step)->Unit(benchmark::kMillisecond)->UseRealTime();

/// Element-wise layers on one Combo hidden activation (1,000 x 256) in training mode, in GB/s of
/// the bytes they must move: ReLU reads x and writes y (8 B per element); dropout also writes its
/// mask (12 B).
template <class Spec>
void elementwise_forward(benchmark::State& state, Spec spec, double bytes_per_element) {
  Model<Spec> model(std::move(spec));
  model.build(1000, 1);
  const matrix_f x = random_batch(1000, batch);
  pass_info pass;
  for (auto _ : state) {
    benchmark::DoNotOptimize(model.forward(x, pass).data());
    ++pass.step;
  }
  state.counters["GB/s"] = benchmark::Counter(bytes_per_element * static_cast<double>(x.size()), benchmark::Counter::kIsIterationInvariantRate,
                                              benchmark::Counter::kIs1000);
}
void BM_relu_forward(benchmark::State& state) { elementwise_forward(state, ReLU{}, 8.0); }
void BM_dropout_forward(benchmark::State& state) { elementwise_forward(state, Dropout{0.05}, 12.0); }
BENCHMARK(BM_relu_forward)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_dropout_forward)->Unit(benchmark::kMicrosecond)->UseRealTime();

/// Minibatch assembly for the drug-response model: 256 tuples, each a cell row and two drug rows
/// of the entity tables copied side by side (8,579 floats), in GB/s of batch written.
void BM_gather_drug_response(benchmark::State& state) {
  synthetic_drug_response_options o;
  o.tuples = 20000;
  auto generated = generate_drug_response<float>(o);
  const DrugResponseDataset<float> data(std::make_shared<const drug_response_data<float>>(std::move(generated.data)));
  const std::vector<Index> order = permutation(data.size(), random_stream(3, purpose::user));
  matrix_f x, y;
  Index at = 0;
  for (auto _ : state) {
    if (at + batch > data.size()) at = 0;
    data.gather(order.data() + at, batch, x, y);
    at += batch;
  }
  state.counters["GB/s"] = benchmark::Counter(4.0 * static_cast<double>(data.input_width() * batch), benchmark::Counter::kIsIterationInvariantRate,
                                              benchmark::Counter::kIs1000);
}
BENCHMARK(BM_gather_drug_response)->Unit(benchmark::kMicrosecond)->UseRealTime();
}  // namespace

BENCHMARK_MAIN();
