#pragma once
/// \file model_parallel.hpp
/// `ModelParallel<Comm>`: dense layers split by output rows across the ranks of a model-parallel
/// group, optionally combined with data parallelism on a 2-D grid of P = data x model ranks.
///
/// World rank w sits at data row d = w / M and model column m = w % M (M = model ranks), so the
/// ranks that share one model are neighbours (on one node when ranks are placed in order):
///   * the M ranks of a row form a model-parallel group: each holds 1/M of every wide Dense
///     layer's rows (and so 1/M of its gradient and optimizer state); layers/partition.hpp has
///     the math. Everything else runs replicated on the M ranks with the same inputs;
///   * the D ranks of a column hold the same shard and split each global batch between them:
///     a `DataParallel` over that column sums their gradients (fast or deterministic mode).
/// Usage: the model is built with the strategy's partition, so its layers know their rows:
///     ModelParallel<MpiCommunicator> strategy(world, {2});           // 2 model ranks per group
///     Model<Net> model(spec);
///     model.build(width, seed, strategy.partition());
///     Trainer<Net, MSE, Adam, ModelParallel<MpiCommunicator>> trainer(std::move(model), {}, {}, std::move(strategy));
/// Checkpoints hold whole tensors (gathered from the group), so they move between serial,
/// data-parallel and model-parallel runs of any shape.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../core/parameter_store.hpp"
#include "../core/random.hpp"
#include "../layers/partition.hpp"
#include "communicator.hpp"
#include "data_parallel.hpp"

namespace strata {

/// Settings of `ModelParallel`.
struct model_parallel_options {
  /// Ranks per model-parallel group (M); the world size must be a multiple. 0: all ranks.
  int model_ranks = 0;
  /// How the D = P / M data-parallel ranks of a column sum their gradients.
  data_parallel_options data{};
  /// Dense layers narrower than this many rows per rank stay whole (replicated).
  Index min_rows_per_rank = 8;
};

/// A `row_partition` over a communicator (the model-parallel group).
template <class Comm>
class communicator_partition final : public row_partition {
 public:
  explicit communicator_partition(Comm comm) : comm_(std::move(comm)) {}
  int rank() const override { return comm_.rank(); }
  int size() const override { return comm_.size(); }
  void all_gather(const float* in, float* out, const std::vector<std::size_t>& counts) override { comm_.all_gather(in, out, counts); }
  void all_gather(const double* in, double* out, const std::vector<std::size_t>& counts) override { comm_.all_gather(in, out, counts); }
  void all_reduce_sum(float* data, std::size_t n) override { comm_.all_reduce_sum(data, n); }
  void all_reduce_sum(double* data, std::size_t n) override { comm_.all_reduce_sum(data, n); }
  Comm& communicator() { return comm_; }

 private:
  Comm comm_;
};

/// Model parallelism on a grid: a data-parallel strategy over this rank's data column (the ranks
/// that hold the same rows) that also splits wide dense layers over the model group. It states
/// only what differs from DataParallel: who it is in the world, start-up checks over the whole
/// grid, whole tensors for checkpoints and norms summed over split rows.
template <class Comm>
class ModelParallel : public DataParallel<Comm> {
  using data_parallel = DataParallel<Comm>;

 public:
  static constexpr const char* name = "model-parallel";

  explicit ModelParallel(Comm world = {}, model_parallel_options options = {})
      : data_parallel(data_column(world, checked(options, world.size())), options.data),
        world_(std::move(world)),
        options_(checked(options, world_.size())),
        group_(std::make_unique<communicator_partition<Comm>>(world_.split(world_.rank() / options_.model_ranks,
                                                                           world_.rank() % options_.model_ranks))) {
    group_->min_rows_per_rank = options_.min_rows_per_rank;
  }

  int rank() const { return world_.rank(); }
  int ranks() const { return world_.size(); }
  bool is_root() const { return world_.rank() == 0; }
  /// This rank's place in the grid: its model column (0..M-1) and data row (0..D-1).
  int model_rank() const { return group_->rank(); }
  int model_ranks() const { return group_->size(); }
  int data_rank() const { return data_parallel::rank(); }
  int data_ranks() const { return data_parallel::ranks(); }
  /// What `Model::build` needs to split its layers over this rank's model-parallel group.
  row_partition* partition() { return group_.get(); }
  Comm& communicator() { return world_; }
  const model_parallel_options& options() const { return options_; }

  /// Checks that every rank built the same (whole) model with the same settings and grid, then
  /// makes the ranks of each data column start from the same weights.
  template <class B>
  void synchronize(parameter_store<B>& params, std::vector<buffer<B>>& buffers, std::uint64_t settings = 0) {
    std::uint64_t h = mix64(settings) ^ mix64(static_cast<std::uint64_t>(model_ranks()) + 0x4D50ull) ^
                      mix64(static_cast<std::uint64_t>(group_->min_rows_per_rank) + 0x4D51ull);
    for (const auto& p : params) {
      // Whole shapes and which tensors are split: ranks that split different layers would issue
      // different collectives.
      const Index rows = p.split.split() ? p.split.whole_rows : p.value->rows();
      h = mix64(h ^ std::hash<std::string>{}(p.name)) ^
          mix64(static_cast<std::uint64_t>(rows) * 31u + static_cast<std::uint64_t>(p.value->cols()) * 2u + (p.split.split() ? 1u : 0u));
    }
    for (const auto& b : buffers) h = mix64(h ^ std::hash<std::string>{}(b.name)) ^ mix64(static_cast<std::uint64_t>(b.value->size()));
    check_agreement(world_, h, "ModelParallel",
                    "built a different model or uses different settings (model layout, batch size, seeds, optimizer "
                    "or grid)");
    data_parallel::synchronize(params, buffers, settings);
  }

  /// Split tensors' squares are summed over the model group (each rank holds some rows);
  /// replicated tensors are counted once.
  template <class B>
  double squared_gradient_norm(const std::vector<parameter_slice<B>>& slices, const parameter_store<B>& params) {
    if (model_ranks() == 1) return data_parallel::squared_gradient_norm(slices, params);
    double split = 0.0, whole = 0.0;
    for (const auto& s : slices)
      if (!s.group.frozen()) (params[s.parameter].split.split() ? split : whole) += detail::squared_norm(s);
    group_->all_reduce_sum(&split, 1);
    return split + whole;
  }

  /// The optimizer state as whole tensors (gathered from the group; collective).
  template <class Optimizer, class B, class F>
  void for_each_optimizer_state(Optimizer& optimizer, parameter_store<B>& params, F&& f) {
    std::map<std::string, row_split> splits;
    for (const auto& p : params) splits[p.name] = p.split;
    data_parallel::for_each_optimizer_state(optimizer, params, [&](const std::string& name, typename B::matrix& m) {
      // State tensors are named "<parameter>.<state>" and shaped like their parameter.
      const auto it = splits.find(name.substr(0, name.rfind('.')));
      with_whole<B>(it == splits.end() ? row_split{} : it->second, m, [&](typename B::matrix& whole) { f(name, whole); });
    });
  }

  /// Calls f with the whole tensor: for a split one, every rank's rows are gathered first and
  /// this rank's rows are taken back from what f leaves (a checkpoint being loaded).
  template <class B, class M, class F>
  void with_whole(const row_split& split, M& local, F&& f) {
    if (!split.split()) return f(local);
    typename B::matrix whole;
    host_matrix<typename B::scalar> scratch;
    detail::all_gather_rows<B>(*group_, local, split.whole_rows, scratch, whole);
    f(whole);
    detail::take_rows<B>(whole, split, local);
  }

  void agree(std::uint64_t value, const char* what) { check_agreement(world_, value, "ModelParallel", what); }
  // Inherited from DataParallel over the data column: reduce_gradients (a model group's ranks
  // already hold complete gradients of their rows), sum (the group's ranks computed the same
  // loss), gather, average_buffers, the listener, optimizer slices and after_step.

 private:
  static model_parallel_options checked(model_parallel_options options, int p) {
    if (options.model_ranks == 0) options.model_ranks = p;
    const int m = options.model_ranks;
    if (m < 1 || p % m != 0)
      throw config_error(detail::concat("ModelParallel: ", p, " ranks cannot form groups of ", m,
                                        " model ranks (the rank count must be a multiple of the model ranks)"));
    if (options.data.shard_optimizer && m > 1)
      throw config_error("ModelParallel: a sharded optimizer (ZeRO) cannot be combined with model parallelism, which "
                         "already splits the dense layers' optimizer state");
    if (options.min_rows_per_rank < 1)
      throw config_error(detail::concat("ModelParallel: min_rows_per_rank must be at least 1, got ", options.min_rows_per_rank));
    return options;
  }

  /// The ranks that hold the same rows as this one: same model rank, one per data row.
  static Comm data_column(Comm& world, const model_parallel_options& o) {
    return world.split(world.rank() % o.model_ranks, world.rank() / o.model_ranks);
  }

  Comm world_;
  model_parallel_options options_;
  std::unique_ptr<communicator_partition<Comm>> group_;  // layers point at it: a stable address
};

}  // namespace strata
