// What this machine can do, measured in the same run as the figures it bounds:
//   BM_fma_peak            single-precision FMA throughput: 16 independent vector accumulators
//                          per thread (enough to hide FMA latency), GFLOP/s per thread count
//   BM_memory_triad        memory bandwidth (a = b + s c, 3 x 64 MiB), GB/s
//   BM_eigen_gemm/M/K/N    Eigen's GEMM at the Combo shapes (C[M x N] = A[M x K] B[K x N], batch N)
//   BM_blas_gemm/M/K/N     OpenBLAS sgemm at the same shapes (when built with BLAS)
// Every GEMM reports GFLOP/s; divide by BM_fma_peak at the same thread count for the fraction of
// peak. Threads: OMP_NUM_THREADS (Eigen) and OPENBLAS_NUM_THREADS; mind OPENBLAS_CORETYPE (the
// toolchain notes: these machines export Haswell, which forces OpenBLAS's AVX2 kernels).
// Run: build/bench/bench_peak --benchmark_min_time=0.5
#include <benchmark/benchmark.h>

#include <strata/core/tensor.hpp>

#include "fma_peak.hpp"

#include <Eigen/Core>
#ifdef _OPENMP
#include <omp.h>
#endif
#ifdef STRATA_BENCH_CBLAS
#include <cblas.h>
#endif

#include <cstdint>
#include <vector>

namespace {

using strata::Index;
using strata::matrix_f;

void BM_fma_peak(benchmark::State& state) {
  constexpr std::int64_t iterations = 1 << 22;
  const int threads = bench::probe_threads();
  for (auto _ : state) benchmark::DoNotOptimize(bench::fma_round(iterations));
  state.counters["GFLOP/s"] = benchmark::Counter(bench::chain_flops(iterations) * threads, benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::kIs1000);
  state.counters["threads"] = threads;
}
BENCHMARK(BM_fma_peak)->Unit(benchmark::kMillisecond)->UseRealTime();

/// Memory bandwidth: a = b + s c over 3 x 64 MiB (far beyond the caches), 12 bytes per element.
void BM_memory_triad(benchmark::State& state) {
  const Index n = Index{1} << 24;
  std::vector<float> a(static_cast<std::size_t>(n), 0.0f), b(a.size(), 1.0f), c(a.size(), 2.0f);
  float* pa = a.data();
  const float* pb = b.data();
  const float* pc = c.data();
  for (auto _ : state) {
#ifdef _OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (Index i = 0; i < n; ++i) pa[i] = pb[i] + 0.5f * pc[i];
    benchmark::DoNotOptimize(pa);
  }
  state.counters["GB/s"] = benchmark::Counter(12.0 * static_cast<double>(n), benchmark::Counter::kIsIterationInvariantRate,
                                              benchmark::Counter::kIs1000);
}
BENCHMARK(BM_memory_triad)->Unit(benchmark::kMillisecond)->UseRealTime();

void gemm_shapes(benchmark::internal::Benchmark* b) {
  // Combo at batch 256: the cell and drug encoders' first layers, the hidden 1000 -> 1000, the
  // 3000 -> 1000 layer after the concatenation.
  for (const auto& [m, k] : std::vector<std::pair<int, int>>{{1000, 921}, {1000, 3829}, {1000, 1000}, {1000, 3000}}) b->Args({m, k, 256});
}

void report(benchmark::State& state) {
  const double flops = 2.0 * static_cast<double>(state.range(0)) * static_cast<double>(state.range(1)) * static_cast<double>(state.range(2));
  state.counters["GFLOP/s"] = benchmark::Counter(flops, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}

void BM_eigen_gemm(benchmark::State& state) {
  const matrix_f a = matrix_f::Random(state.range(0), state.range(1)), b = matrix_f::Random(state.range(1), state.range(2));
  matrix_f c(state.range(0), state.range(2));
  for (auto _ : state) {
    c.noalias() = a * b;
    benchmark::DoNotOptimize(c.data());
  }
  report(state);
}
BENCHMARK(BM_eigen_gemm)->Apply(gemm_shapes)->Unit(benchmark::kMillisecond)->UseRealTime();

#ifdef STRATA_BENCH_CBLAS
void BM_blas_gemm(benchmark::State& state) {
  const auto m = static_cast<int>(state.range(0)), k = static_cast<int>(state.range(1)), n = static_cast<int>(state.range(2));
  const matrix_f a = matrix_f::Random(m, k), b = matrix_f::Random(k, n);
  matrix_f c(m, n);
  for (auto _ : state) {
    cblas_sgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, a.data(), m, b.data(), k, 0.0f, c.data(), m);
    benchmark::DoNotOptimize(c.data());
  }
  report(state);
}
BENCHMARK(BM_blas_gemm)->Apply(gemm_shapes)->Unit(benchmark::kMillisecond)->UseRealTime();
#endif

}  // namespace

BENCHMARK_MAIN();
