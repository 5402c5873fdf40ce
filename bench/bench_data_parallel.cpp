// Data-parallel costs under mpirun (not a unit test; speed belongs here):
//  1. all-reduce bandwidth by message size (1 KiB - 64 MiB) for one raw MPI_Allreduce call, the
//     communicator's chunked all-reduce, DataParallel's bucketed reduction and its deterministic
//     reduction (all-to-all, ordered sum, all-gather);
//  2. a Combo training step (batch 256, the full 13.76 M-parameter model) split into compute
//     (forward + backward, with fast mode's buckets starting during backward), exposed
//     communication (what is left to wait for after backward) and the optimizer step, in fast
//     and deterministic mode.
// Prints a table and one JSON line per measurement on rank 0.
//  3. with --layers (one rank): per-layer compute times of a Combo step by batch, for
//     bench/scaling_model.
//   mpirun -n 2 bench_data_parallel [--quick] [--steps-only]   (1 thread per rank: OMP_NUM_THREADS=1)

#include <strata/models/combo.hpp>
#include <strata/optim/adam.hpp>
#include <strata/parallel/data_parallel.hpp>
#include <strata/parallel/mpi_communicator.hpp>
#include <strata/graph/model.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

using namespace strata;
using clock_type = std::chrono::steady_clock;

namespace {

double seconds(clock_type::time_point a, clock_type::time_point b) { return std::chrono::duration<double>(b - a).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

/// Gradients of `bytes` in total, as 1 MiB parameters (the last one smaller), placed in one
/// parameter store as a model's are.
struct fake_parameters {
  std::vector<host_parameter_matrix<float>> values, gradients;
  parameter_store<EigenBackend<float>> list;
  explicit fake_parameters(std::size_t bytes) {
    constexpr std::size_t per_parameter = (1u << 20) / sizeof(float);
    std::size_t left = bytes / sizeof(float);
    const std::size_t count = (left + per_parameter - 1) / per_parameter;
    values.resize(count);  // (the parameters point at these: no reallocation after)
    gradients.resize(count);
    for (std::size_t i = 0; left > 0; ++i) {
      const std::size_t n = std::min(left, per_parameter);
      values[i].resize(static_cast<Index>(n), 1);
      values[i].setZero();
      gradients[i].resize(static_cast<Index>(n), 1);
      gradients[i].setConstant(1.0f);
      list.add({"p" + std::to_string(i), &values[i], &gradients[i]});
      left -= n;
    }
    list.place();
  }
};

template <class F>
double time_median(MpiCommunicator& comm, int repeats, F&& f) {
  std::vector<double> t;
  f();  // warm-up
  for (int i = 0; i < repeats; ++i) {
    comm.barrier();
    const auto start = clock_type::now();
    f();
    t.push_back(seconds(start, clock_type::now()));
  }
  // The slowest rank decides.
  double mine = median(t);
  std::vector<double> all(static_cast<std::size_t>(comm.size()));
  comm.all_gather(&mine, all.data(), std::vector<std::size_t>(static_cast<std::size_t>(comm.size()), 1));
  return *std::max_element(all.begin(), all.end());
}

void bandwidth(MpiCommunicator& comm, bool quick) {
  const bool root = comm.rank() == 0;
  if (root)
    std::printf("all-reduce of float gradients, %d ranks: algorithm bandwidth GB/s (bytes / time)\n%10s %10s %10s %10s %14s\n",
                comm.size(), "bytes", "raw call", "chunked", "bucketed", "deterministic");
  for (std::size_t bytes = 1024; bytes <= (std::size_t{64} << 20); bytes *= 4) {
    const int repeats = quick ? 3 : (bytes <= (1u << 20) ? 50 : 8);
    fake_parameters p(bytes);
    std::vector<float> values(bytes / sizeof(float), 1.0f);
    const double raw = time_median(comm, repeats, [&] {
      MPI_Allreduce(MPI_IN_PLACE, values.data(), static_cast<int>(values.size()), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    });
    const double chunked = time_median(comm, repeats, [&] { comm.all_reduce_sum(values.data(), values.size()); });
    DataParallel<MpiCommunicator> fast(comm);
    std::vector<buffer<EigenBackend<float>>> none;
    fast.synchronize(p.list, none);
    const double bucketed = time_median(comm, repeats, [&] { fast.reduce_gradients(p.list); });
    data_parallel_options o;
    o.deterministic = true;
    DataParallel<MpiCommunicator> exact(comm, o);
    exact.synchronize(p.list, none);
    const Index local_blocks = o.blocks / comm.size();
    const double deterministic = time_median(comm, repeats, [&] {
      for (Index b = 0; b < local_blocks; ++b) exact.block_done(p.list);
      exact.reduce_gradients(p.list);
    });
    if (root) {
      const double b = static_cast<double>(bytes);
      std::printf("%10zu %10.2f %10.2f %10.2f %14.2f\n", bytes, b / raw / 1e9, b / chunked / 1e9, b / bucketed / 1e9,
                  b / deterministic / 1e9);
      std::printf("{\"bench\":\"allreduce\",\"ranks\":%d,\"bytes\":%zu,\"raw_s\":%.6g,\"chunked_s\":%.6g,\"bucketed_s\":%.6g,"
                  "\"deterministic_s\":%.6g}\n",
                  comm.size(), bytes, raw, chunked, bucketed, deterministic);
    }
  }
}

void training_step(MpiCommunicator& comm, bool deterministic, Index blocks, bool sharded, bool quick) {
  const Index batch = 256;
  Model<Combo> model(make_combo(combo_options{}));
  model.build(8579, 1);
  data_parallel_options o;
  o.deterministic = deterministic;
  o.blocks = blocks;
  o.shard_optimizer = sharded;
  DataParallel<MpiCommunicator> dp(comm, o);
  dp.synchronize(model.parameters(), model.buffers());
  auto slices = dp.optimizer_slices(model.parameters());
  Adam::impl<EigenBackend<float>> adam(Adam{}, slices);
  double state_bytes = 0;
  adam.for_each_state([&](const std::string&, matrix_f& m) { state_bytes += sizeof(float) * static_cast<double>(m.size()); });
  const random_stream rng(3, purpose::user);
  const auto [offset, count] = dp.local_range(batch);
  matrix_f x(8579, count), dy(1, count);
  for (Index i = 0; i < x.size(); ++i) x.data()[i] = static_cast<float>(rng.normal(static_cast<std::uint64_t>(i)));
  dy.setConstant(1.0f / batch);
  std::vector<double> compute, exposed, update;
  const int steps = quick ? 3 : 15;
  for (int s = 0; s < steps + 2; ++s) {
    comm.barrier();
    const auto t0 = clock_type::now();
    pass_info pass;
    pass.step = static_cast<std::uint64_t>(s);
    pass.gradients = dp.listener();
    for (const auto& [begin, columns] : dp.local_blocks(batch)) {
      const matrix_f xb = x.middleCols(begin, columns), dyb = dy.middleCols(begin, columns);
      pass.first_sample = static_cast<std::uint64_t>(offset + begin);
      model.forward(xb, pass);
      model.backward(dyb);
      dp.block_done(model.parameters());
    }
    const auto t1 = clock_type::now();
    dp.reduce_gradients(model.parameters());
    const auto t2 = clock_type::now();
    adam.step(slices, 1e-4);
    dp.after_step(model.parameters());
    const auto t3 = clock_type::now();
    if (s < 2) continue;  // warm-up
    compute.push_back(seconds(t0, t1));
    exposed.push_back(seconds(t1, t2));
    update.push_back(seconds(t2, t3));
  }
  const double c = median(compute), e = median(exposed), u = median(update), total = c + e + u;
  if (comm.rank() == 0) {
    const std::string mode =
        (deterministic ? "deterministic/" + std::to_string(blocks) + " blocks" : std::string("fast")) + (sharded ? " + ZeRO-1" : "");
    std::printf("Combo step, %d rank(s), %s: %.1f ms (compute %.1f, exposed communication %.1f = %.1f%%, Adam %.1f); "
                "%.0f samples/s; Adam state %.0f MB per rank\n",
                comm.size(), mode.c_str(), 1e3 * total, 1e3 * c, 1e3 * e, 100 * e / total, 1e3 * u,
                batch / total, state_bytes / 1e6);
    std::printf("{\"bench\":\"combo_step\",\"ranks\":%d,\"mode\":\"%s\",\"step_s\":%.6g,\"compute_s\":%.6g,\"exposed_s\":%.6g,"
                "\"adam_s\":%.6g,\"samples_per_s\":%.6g}\n",
                comm.size(), mode.c_str(), total, c, e, u, batch / total);
  }
}

/// Per-layer compute of a Combo training step, one rank (the scaling model's input,
/// bench/scaling_model): for each per-rank batch, the whole forward + backward measured on the
/// model, and each Dense layer's products (forward W x; backward dW = dy x^T and
/// dx = W^T dy) timed alone at its shape, in the order backward finishes the layers' gradients.
void layer_times(bool quick) {
  const combo_options o;
  const Index w = o.width;
  struct layer {
    const char* name;
    Index inputs, outputs, uses;  // uses: samples per batch sample (the shared drug encoder: 2)
  };
  const std::vector<layer> backward_order{{"output", w, 1, 1},       {"stack/2", w, w, 1},   {"stack/1", w, w, 1},
                                          {"stack/0", 3 * w, w, 1},  {"drug/2", w, w, 2},    {"drug/1", w, w, 2},
                                          {"drug/0", o.drug_width, w, 2}, {"cell/2", w, w, 1}, {"cell/1", w, w, 1},
                                          {"cell/0", o.cell_width, w, 1}};
  const int repeats = quick ? 3 : 9;
  const auto timed = [&](auto&& work) {
    std::vector<double> t;
    for (int r = 0; r < repeats + 1; ++r) {
      const auto a = clock_type::now();
      work();
      if (r > 0) t.push_back(seconds(a, clock_type::now()));
    }
    return median(t);
  };
  Model<Combo> model(make_combo(o));
  const Index inputs = o.cell_width + 2 * o.drug_width;
  model.build(inputs, 1);
  const random_stream rng(5, purpose::user);
  for (const Index batch : {16, 32, 64, 128, 256}) {
    matrix_f x(inputs, batch), dy(1, batch);
    for (Index i = 0; i < x.size(); ++i) x.data()[i] = static_cast<float>(rng.normal(static_cast<std::uint64_t>(i)));
    dy.setConstant(1.0f / static_cast<float>(batch));
    const double whole = timed([&] {
      pass_info pass;
      model.forward(x, pass);
      model.backward(dy);
    });
    double products = 0.0;
    for (const layer& l : backward_order) {
      const Index n = batch * l.uses;
      matrix_f W = matrix_f::Random(l.outputs, l.inputs), in = matrix_f::Random(l.inputs, n), out(l.outputs, n),
               d_out = matrix_f::Random(l.outputs, n), dW(l.outputs, l.inputs), d_in(l.inputs, n);
      const double forward = timed([&] { out.noalias() = W * in; });
      const double backward = timed([&] {
        dW.noalias() = d_out * in.transpose();
        d_in.noalias() = W.transpose() * d_out;
      });
      products += forward + backward;
      std::printf("{\"bench\":\"combo_layer\",\"batch\":%ld,\"layer\":\"%s\",\"inputs\":%ld,\"outputs\":%ld,"
                  "\"parameters\":%ld,\"forward_s\":%.6g,\"backward_s\":%.6g}\n",
                  static_cast<long>(batch), l.name, static_cast<long>(l.inputs), static_cast<long>(l.outputs),
                  static_cast<long>(l.inputs * l.outputs + l.outputs), forward, backward);
    }
    std::printf("{\"bench\":\"combo_compute\",\"batch\":%ld,\"forward_backward_s\":%.6g,\"products_s\":%.6g}\n",
                static_cast<long>(batch), whole, products);
    std::fflush(stdout);
  }
}

}  // namespace

int main(int argc, char** argv) {
  // Funneled: only the main thread calls MPI (the loader's prefetch thread and OpenMP never do).
  boost::mpi::environment environment(argc, argv, boost::mpi::threading::multiple);  // as programs run it (stall watchdog)
  MpiCommunicator world;
  bool quick = false, run_bandwidth = true, layers = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) {
      quick = true;
    } else if (std::strcmp(argv[i], "--steps-only") == 0) {
      run_bandwidth = false;
    } else if (std::strcmp(argv[i], "--layers") == 0) {
      layers = true;
    } else {
      if (world.rank() == 0)
        std::printf("usage: mpirun -n P bench_data_parallel [--quick] [--steps-only] [--layers]\n"
                    "  --quick       fewer repetitions\n  --steps-only  skip the all-reduce bandwidth sweep\n"
                    "  --layers      (1 rank) per-layer compute times of a Combo step by batch, JSON only\n");
      return std::strcmp(argv[i], "--help") == 0 ? 0 : 2;
    }
  }
  if (layers) {
    if (world.size() != 1) {
      if (world.rank() == 0) std::printf("bench_data_parallel: --layers runs on one rank\n");
      return 2;
    }
    layer_times(quick);
    return 0;
  }
  if (run_bandwidth) bandwidth(world, quick);
  training_step(world, false, 0, false, quick);
  for (const Index blocks : {4, 8})
    if (blocks % world.size() == 0) training_step(world, true, blocks, false, quick);
  training_step(world, false, 0, true, quick);
  return 0;
}
