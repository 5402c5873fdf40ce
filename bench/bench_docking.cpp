// Docking-surrogate inference throughput (predictions/s), what screening a library costs:
//   BM_descriptor_mlp/<batch>    1,613 -> 250 -> 125 -> 60 -> 30 -> 1 on descriptor batches
//   BM_fingerprint_mlp/<batch>   2,048 -> 1,024 -> 256 -> 64 -> 16 -> 1, sparse first layer, on
//                                synthetic Morgan-like fingerprints (~3% of bits set)
//   BM_fingerprint_mlp_dense/<batch>   the same model with an ordinary Dense first layer: what
//                                the sparse layer saves
//   BM_library_generation/<batch>      generating the synthetic fingerprints alone
//   BM_descriptor_generation/<batch>   generating the synthetic descriptors alone (what bounds a
//                                descriptor screen: 1,613 column sums and tanh per molecule)
// Features are generated once per benchmark; the loop times the forward pass only.
// Run: build/bench/bench_docking --benchmark_min_time=0.5 (threads: OMP_NUM_THREADS)
#include <benchmark/benchmark.h>

#include <strata/strata.hpp>
#include <strata/data/synthetic_library.hpp>
#include <strata/models/docking.hpp>

using namespace strata;

namespace {

using DenseFingerprintMLP = Sequential<Dense<1024>, ReLU, Dropout, DockingLayer<256>, DockingLayer<64>, DockingLayer<16>, Dense<1>>;

matrix_f library_batch(molecule_features f, Index batch) {
  const SyntheticLibrary library;
  const SyntheticLibraryDataset<float> data(library, f, 0, batch);
  std::vector<Index> rows(static_cast<std::size_t>(batch));
  for (Index j = 0; j < batch; ++j) rows[static_cast<std::size_t>(j)] = j;
  matrix_f x, y;
  data.gather(rows.data(), batch, x, y);
  return x;
}

template <class Spec>
void run(benchmark::State& state, Spec spec, molecule_features f) {
  const Index batch = state.range(0);
  Model<Spec> model(std::move(spec));
  const matrix_f x = library_batch(f, batch);
  model.build(x.rows(), 1);
  pass_info eval;
  eval.phase = mode::eval;
  for (auto _ : state) benchmark::DoNotOptimize(model.forward(x, eval).data());
  state.counters["predictions/s"] = benchmark::Counter(static_cast<double>(batch), benchmark::Counter::kIsIterationInvariantRate);
}

void BM_descriptor_mlp(benchmark::State& state) { run(state, make_descriptor_mlp(), molecule_features::descriptors); }
void BM_fingerprint_mlp(benchmark::State& state) { run(state, make_fingerprint_mlp(), molecule_features::fingerprint); }
void BM_fingerprint_mlp_dense(benchmark::State& state) {
  const auto layer = [](auto dense) { return DockingLayer<decltype(dense)::template output_width<dynamic>>{dense, ReLU{}, Dropout{0.1}}; };
  run(state, DenseFingerprintMLP{Dense<1024>{}, ReLU{}, Dropout{0.1}, layer(Dense<256>{}), layer(Dense<64>{}), layer(Dense<16>{}), Dense<1>{}},
      molecule_features::fingerprint);
}

void generate(benchmark::State& state, molecule_features f) {
  const Index batch = state.range(0);
  const SyntheticLibrary library;
  std::vector<Index> rows(static_cast<std::size_t>(batch));
  matrix_f x, y;
  std::uint64_t first = 0;
  for (auto _ : state) {
    const SyntheticLibraryDataset<float> data(library, f, first, batch);
    for (Index j = 0; j < batch; ++j) rows[static_cast<std::size_t>(j)] = j;
    data.gather(rows.data(), batch, x, y);
    first += static_cast<std::uint64_t>(batch);
  }
  state.counters["molecules/s"] = benchmark::Counter(static_cast<double>(batch), benchmark::Counter::kIsIterationInvariantRate);
}

void BM_library_generation(benchmark::State& state) { generate(state, molecule_features::fingerprint); }
void BM_descriptor_generation(benchmark::State& state) { generate(state, molecule_features::descriptors); }

}  // namespace

BENCHMARK(BM_descriptor_mlp)->Arg(1024)->Arg(8192)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_fingerprint_mlp)->Arg(1024)->Arg(8192)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_fingerprint_mlp_dense)->Arg(1024)->Arg(8192)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_library_generation)->Arg(8192)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_descriptor_generation)->Arg(1024)->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
