// Dense-layer and training-step throughput on the Combo model's shapes (batch 256):
//   BM_dense_forward/backward   one 1000-wide layer; reports GFLOP/s against the GEMM work
//   BM_combo_train_step         forward + backward + Adam on the full 13.76 M-parameter model;
//                               reports samples/s
//   BM_adam_step                the Adam step alone over those parameters, in GB/s of traffic
//   BM_relu_forward, BM_dropout_forward   element-wise layers on one hidden activation, GB/s
// Run: build/bench/bench_dense --benchmark_min_time=0.5
// Remember OPENBLAS_CORETYPE (see the toolchain notes) when comparing BLAS builds.
#include <benchmark/benchmark.h>

#include <strata/strata.hpp>
#include <strata/models/combo.hpp>
#include <strata/optim/adam.hpp>

using namespace strata;

namespace {
constexpr Index batch = 256;

matrix_f random_batch(Index rows, Index cols) {
  const random_stream rng(1, purpose::user);
  matrix_f m(rows, cols);
  for (Index i = 0; i < m.size(); ++i) m.data()[i] = static_cast<float>(rng.normal(static_cast<std::uint64_t>(i)));
  return m;
}

void BM_dense_forward(benchmark::State& state) {
  const Index in = state.range(0), out = state.range(1);
  Model<Dense<>> model(Dense<>{out});
  model.build(in, 1);
  const matrix_f x = random_batch(in, batch);
  for (auto _ : state) benchmark::DoNotOptimize(model.forward(x).data());
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * in * out * batch, benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::kIs1000);
}
BENCHMARK(BM_dense_forward)->Args({8579, 1000})->Args({1000, 1000})->Unit(benchmark::kMillisecond);

void BM_dense_backward(benchmark::State& state) {
  const Index in = state.range(0), out = state.range(1);
  Model<Dense<>> model(Dense<>{out});
  model.build(in, 1);
  const matrix_f x = random_batch(in, batch), dy = random_batch(out, batch);
  model.forward(x);
  for (auto _ : state) benchmark::DoNotOptimize(model.backward(dy, true).data());
  state.counters["GFLOP/s"] = benchmark::Counter(4.0 * in * out * batch, benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::kIs1000);
}
BENCHMARK(BM_dense_backward)->Args({1000, 1000})->Unit(benchmark::kMillisecond);

void BM_combo_train_step(benchmark::State& state) {
  Model<Combo> model(make_combo(combo_options{}));
  model.build(8579, 1);
  Adam::impl<EigenBackend<float>> adam(Adam{}, model.parameters());
  const matrix_f x = random_batch(8579, batch);
  const matrix_f dy = random_batch(1, batch) / static_cast<float>(batch);
  pass_info pass;
  for (auto _ : state) {
    model.forward(x, pass);
    model.backward(dy);
    adam.step(model.parameters(), 1e-3);
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
  Adam::impl<EigenBackend<float>> adam(Adam{}, model.parameters());
  for (auto _ : state) adam.step(model.parameters(), 1e-3);
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
}  // namespace

BENCHMARK_MAIN();
