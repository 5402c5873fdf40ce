#pragma once
// The machine's single-precision FMA peak, measured: what bench_peak reports and what the other
// benchmarks divide by for their fraction of peak. (Benchmark plumbing, not library.)
#include <chrono>
#include <cstdint>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace bench {

/// 16 floats: one AVX-512 register where the machine has them (GCC vector extension, so the
/// compiler picks the widest FMA the -march allows).
typedef float lanes __attribute__((vector_size(64)));
constexpr int accumulators = 16;
constexpr int lane_count = 16;

/// `iterations` rounds of one FMA into each of 16 independent accumulators (enough to hide the
/// FMA latency); returns a value that depends on all of them so nothing is optimised away.
inline float fma_chain(std::int64_t iterations, float seed) {
  lanes acc[accumulators];
  lanes a, b;
  for (int k = 0; k < lane_count; ++k) {
    a[k] = 1.0f + 1e-7f * static_cast<float>(k);
    b[k] = 1e-7f * seed;
  }
  for (auto& c : acc) c = b;
  for (std::int64_t i = 0; i < iterations; ++i)
    for (auto& c : acc) c = c * a + b;  // contracted to one FMA per vector with -march=native
  lanes sum = acc[0];
  for (int k = 1; k < accumulators; ++k) sum += acc[k];
  float total = 0.0f;
  for (int k = 0; k < lane_count; ++k) total += sum[k];
  return total;
}

/// Threads the FMA probe runs on (OpenMP's count).
inline int probe_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

/// FLOP of one fma_chain call.
inline double chain_flops(std::int64_t iterations) { return 2.0 * accumulators * lane_count * static_cast<double>(iterations); }

/// One run of the chain on every thread; returns the sink so the work stays.
inline float fma_round(std::int64_t iterations) {
  float sink = 0.0f;
#ifdef _OPENMP
#pragma omp parallel reduction(+ : sink)
#endif
  sink += fma_chain(iterations, 1.0f);
  return sink;
}

/// The FMA peak in FLOP/s on all threads: the best of 5 short rounds (about 50 ms).
inline double measured_peak() {
  constexpr std::int64_t iterations = 1 << 20;
  double best = 0.0;
  volatile float keep = 0.0f;
  for (int round = 0; round < 5; ++round) {
    const auto start = std::chrono::steady_clock::now();
    keep = keep + fma_round(iterations);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double rate = chain_flops(iterations) * probe_threads() / seconds;
    if (rate > best) best = rate;
  }
  return best;
}

}  // namespace bench
