#pragma once
/// \file data_parallel.hpp
/// `DataParallel<Comm, Reduction, Sharding>`: every rank holds the whole model and computes its
/// share of each global minibatch; gradients are summed over ranks before the optimizer step.
///
/// Two policies decide how it works, each chosen by type or, with `ChosenAtRunTime` (the
/// default), from `data_parallel_options` (programs that choose on the command line):
///   * the reduction: `BucketedOverlap` (fast; bucketed_reduction.hpp: in-place all-reduces of
///     spans of the gradient buffer, overlapping backward) or `DeterministicTree`
///     (tree_reduction.hpp: fixed sample blocks summed in one pairwise tree, the same bits for
///     every rank count that divides the blocks);
///   * the sharding: `ReplicatedOptimizer` or `ShardedOptimizer` (ZeRO-1,
///     optimizer_sharding.hpp).
/// DataParallel itself states only what differs from Serial and hands each hook to its policy.
/// Start-up broadcasts rank 0's weights and buffers and checks that every rank built the same
/// model with the same settings, failing on every rank with a clear message if not.
///
/// BatchNorm normalises with each rank's own samples (as without synchronised batch norm in
/// other frameworks), so a BatchNorm model is not bit-for-bit the serial one; running statistics
/// are averaged over ranks after every step so all ranks evaluate the same model.
///
/// Checkpoints hold the optimizer state in the unsharded, per-parameter layout, so they move
/// freely between sharded and unsharded runs and between rank counts.

#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "../backend/eigen_backend.hpp"
#include "../core/error.hpp"
#include "../core/hash.hpp"
#include "../core/parameter_store.hpp"
#include "../core/tensor.hpp"
#include "../layers/layer.hpp"
#include "bucketed_reduction.hpp"
#include "communicator.hpp"
#include "host_staging.hpp"
#include "optimizer_sharding.hpp"
#include "serial.hpp"
#include "tree_reduction.hpp"

namespace strata {

/// Settings of `DataParallel`.
struct data_parallel_options {
  /// Gradient bytes per all-reduce bucket in fast mode (a bucket starts when it is complete).
  std::size_t bucket_bytes = std::size_t{4} << 20;
  /// Sum gradients in a fixed tree order so results do not depend on the rank count.
  bool deterministic = false;
  /// Sample blocks per global batch in deterministic mode: a power of two that the rank count
  /// divides. 4 covers 1, 2 and 4 ranks; more blocks allow more ranks but run smaller GEMMs
  /// (Combo at 2 ranks: 4 blocks cost 7% over fast mode, 8 blocks 23%; bench_data_parallel).
  Index blocks = 4;
  /// Shard the optimizer state across ranks (ZeRO stage 1); host float models (EigenBackend<float>).
  bool shard_optimizer = false;
};

/// How DataParallel sums gradients, as a type: `BucketedOverlap` (the fast mode) or
/// `DeterministicTree` (the same bits for every rank count that divides the blocks).
struct BucketedOverlap {
  static constexpr bool deterministic = false;
};
struct DeterministicTree {
  static constexpr bool deterministic = true;
};
/// Where the optimizer state lives, as a type: on every rank, or sharded (ZeRO-1).
struct ReplicatedOptimizer {
  static constexpr bool sharded = false;
};
struct ShardedOptimizer {
  static constexpr bool sharded = true;
};
/// Either choice read from `data_parallel_options` at run time (programs that choose from the
/// command line); the default of both policies.
struct ChosenAtRunTime {};

namespace detail {
/// The policy a tag names: `First` for BucketedOverlap / ReplicatedOptimizer, `Second` for
/// DeterministicTree / ShardedOptimizer, and for ChosenAtRunTime either, set from the options.
template <class Tag, class First, class Second>
struct policy_named {
  using type = std::conditional_t<std::is_same_v<Tag, DeterministicTree> || std::is_same_v<Tag, ShardedOptimizer>, Second, First>;
  static_assert(std::is_same_v<Tag, BucketedOverlap> || std::is_same_v<Tag, DeterministicTree> ||
                    std::is_same_v<Tag, ReplicatedOptimizer> || std::is_same_v<Tag, ShardedOptimizer>,
                "DataParallel: the reduction is BucketedOverlap, DeterministicTree or ChosenAtRunTime; the sharding is "
                "ReplicatedOptimizer, ShardedOptimizer or ChosenAtRunTime");
};
template <class First, class Second>
struct policy_named<ChosenAtRunTime, First, Second> {
  using type = std::variant<First, Second>;
};
}  // namespace detail

/// Data parallelism over `Comm`, with its reduction and sharding chosen by type
/// (`DataParallel<MpiCommunicator, DeterministicTree, ShardedOptimizer>`) or at run time
/// (`DataParallel<MpiCommunicator>` and `data_parallel_options`). A choice fixed by the type
/// overrides the options' field; the other options (blocks, bucket size) apply either way.
template <class Comm, class Reduction = ChosenAtRunTime, class Sharding = ChosenAtRunTime>
class DataParallel : public Serial {
  using bucketed = detail::bucketed_reduction<Comm>;
  using tree = detail::tree_reduction<Comm>;
  using replicated = detail::replicated_optimizer;
  using sharded_state = detail::sharded_optimizer<Comm>;
  using reduction_type = typename detail::policy_named<Reduction, bucketed, tree>::type;
  using sharding_type = typename detail::policy_named<Sharding, replicated, sharded_state>::type;

 public:
  static constexpr const char* name = "data-parallel";

  explicit DataParallel(Comm comm = {}, data_parallel_options options = {})
      : comm_(std::move(comm)),
        options_(fixed_by_type(options)),
        reduction_(make<reduction_type, bucketed, tree>(options_.deterministic, comm_, options_)),
        sharding_(make<sharding_type, replicated, sharded_state>(options_.shard_optimizer, comm_, options_)) {}

  // Nothing here frees memory under a transfer: a rank that unwinds after an error may leave
  // bucket all-reduces running, and their requests keep the model's buffers until MPI is done.

  int rank() const { return comm_.rank(); }
  int ranks() const { return comm_.size(); }
  bool is_root() const { return comm_.rank() == 0; }
  Comm& communicator() { return comm_; }
  const data_parallel_options& options() const { return options_; }
  /// Whether gradients are summed in the fixed tree order.
  bool deterministic() const { return options_.deterministic; }
  /// Whether the optimizer state is sharded (ZeRO-1).
  bool sharded() const { return options_.shard_optimizer; }

  /// First column and number of columns of a global batch that this rank computes.
  std::pair<Index, Index> local_range(Index global_batch) const {
    return with(reduction_, [&](const auto& r) { return r.local_range(global_batch); });
  }
  /// Column ranges of this rank's share that get one forward/backward each (relative to it).
  std::vector<std::pair<Index, Index>> local_blocks(Index global_batch) const {
    return with(reduction_, [&](const auto& r) { return r.local_blocks(global_batch); });
  }

  /// Broadcasts rank 0's parameters and buffers after checking that every rank has the same
  /// model layout and settings; lets the reduction lay out its buckets.
  template <class B>
  void synchronize(parameter_store<B>& params, std::vector<buffer<B>>& buffers, std::uint64_t settings = 0) {
    const std::uint64_t mode = mix64(deterministic() + 2u * sharded()) ^
                               mix64(static_cast<std::uint64_t>(options_.blocks) + 0x100u) ^ mix64(options_.bucket_bytes + 0x200u);
    check_agreement(layout_signature(params, buffers) ^ (settings * 0x9E3779B97F4A7C15ull) ^ mode,
                    "built a different model or uses different settings (model layout, batch size, seeds, optimizer "
                    "or parallel mode)");
    // Every weight of the model in one broadcast: the value buffer is one span.
    const auto n = static_cast<std::size_t>(params.buffer_size());
    float* values = detail::on_host<B>(params.values(), n, staging_);
    comm_.broadcast(values, n, 0);
    detail::back_from_host<B>(values, n, params.values());
    for (auto& b : buffers) broadcast_matrix<B>(*b.value);
    with(reduction_, [&](auto& r) { r.prepare(params, sharded()); });
  }

  /// Who backward tells about finished gradients (the fast reduction, unsharded).
  gradient_listener* listener() {
    return with(reduction_, [&](auto& r) { return r.listener(sharded()); });
  }

  /// What the optimizer updates: every parameter whole, or with sharding the pieces in this
  /// rank's shard (optimizer_sharding.hpp).
  template <class B>
  std::vector<parameter_slice<B>> optimizer_slices(parameter_store<B>& params) {
    return with(sharding_, [&](auto& s) { return s.optimizer_slices(params); });
  }

  /// The squared norm of the gradients that train (summed over the shards when sharded).
  template <class B>
  double squared_gradient_norm(const std::vector<parameter_slice<B>>& slices, const parameter_store<B>&) {
    return with(sharding_, [&](auto& s) { return s.squared_gradient_norm(slices); });
  }

  /// After the optimizer step (sharded: the updated shards are gathered into every rank).
  template <class B>
  void after_step(parameter_store<B>& params) {
    with(sharding_, [&](auto& s) { s.after_step(params); });
  }

  /// Calls f(name, matrix&) for the optimizer's state in the unsharded layout
  /// ("<parameter>.<state>"); collective with sharding.
  template <class Optimizer, class B, class F>
  void for_each_optimizer_state(Optimizer& optimizer, parameter_store<B>& params, F&& f) {
    with(sharding_, [&](auto& s) { s.for_each_optimizer_state(optimizer, params, f); });
  }

  /// After each block's backward (the tree adds the block to its local sum).
  template <class B>
  void block_done(parameter_store<B>& params) {
    with(reduction_, [&](auto& r) { r.block_done(params); });
  }

  /// Makes every parameter's gradient the sum over ranks (with sharding: this rank's shard of it).
  template <class B>
  void reduce_gradients(parameter_store<B>& params) {
    detail::gradient_shard* shard = with(sharding_, [&](auto& s) { return s.shard(params); });
    with(reduction_, [&](auto& r) { r.reduce(params, shard); });
  }

  /// Fails on every rank unless all ranks pass the same value: a hash of what decides how many
  /// collectives each rank will issue (dataset sizes, epochs, the loop position after a resume).
  void agree(std::uint64_t value, const char* what) { check_agreement(value, what); }

  /// Averages buffers (running statistics) over ranks, so every rank evaluates with the same
  /// model. Each rank's statistics saw only its own samples; the mean is the usual estimate.
  template <class B>
  void average_buffers(std::vector<buffer<B>>& buffers) {
    if (ranks() == 1 || buffers.empty()) return;
    host_matrix<typename B::scalar> host;
    for (auto& b : buffers) {
      B::download(*b.value, host);
      comm_.all_reduce_sum(host.data(), static_cast<std::size_t>(host.size()));
      host /= static_cast<typename B::scalar>(ranks());
      B::upload(host, *b.value);
    }
  }

  /// Sum of a scalar over ranks (losses, counts).
  double sum(double local) {
    comm_.all_reduce_sum(&local, 1);
    return local;
  }

  /// Concatenates every rank's columns (in rank order) on every rank.
  template <class T>
  void gather(host_matrix<T>& m) {
    if (ranks() == 1) return;
    std::uint64_t cols = static_cast<std::uint64_t>(m.cols());
    std::vector<std::uint64_t> all_cols(static_cast<std::size_t>(ranks()));
    comm_.all_gather(&cols, all_cols.data(), std::vector<std::size_t>(static_cast<std::size_t>(ranks()), 1));
    std::vector<std::size_t> counts;
    std::uint64_t total = 0;
    for (const auto c : all_cols) {
      counts.push_back(static_cast<std::size_t>(c) * static_cast<std::size_t>(m.rows()));
      total += c;
    }
    host_matrix<T> all(m.rows(), static_cast<Index>(total));
    comm_.all_gather(m.data(), all.data(), counts);
    m = std::move(all);
  }

 private:
  static data_parallel_options fixed_by_type(data_parallel_options o) {
    if constexpr (!std::is_same_v<Reduction, ChosenAtRunTime>) o.deterministic = Reduction::deterministic;
    if constexpr (!std::is_same_v<Sharding, ChosenAtRunTime>) o.shard_optimizer = Sharding::sharded;
    return o;
  }

  template <class Policy, class Fast, class Other>
  static Policy make(bool other, const Comm& comm, const data_parallel_options& o) {
    const auto build = [&](auto tag) {
      using T = typename decltype(tag)::type;
      if constexpr (std::is_same_v<T, bucketed>) return T(comm, o.bucket_bytes);
      else if constexpr (std::is_same_v<T, tree>) return T(comm, o.blocks);
      else if constexpr (std::is_same_v<T, sharded_state>) return T(comm);
      else return T();
    };
    if constexpr (std::is_same_v<Policy, std::variant<Fast, Other>>) {
      if (other) return Policy(std::in_place_type<Other>, build(type_tag<Other>{}));
      return Policy(std::in_place_type<Fast>, build(type_tag<Fast>{}));
    } else {
      return build(type_tag<Policy>{});
    }
  }
  template <class T>
  struct type_tag {
    using type = T;
  };

  /// f(the policy), through std::visit when the policy is chosen at run time.
  template <class Policy, class F>
  static decltype(auto) with(Policy& policy, F&& f) {
    if constexpr (is_variant<std::remove_const_t<Policy>>::value) return std::visit(std::forward<F>(f), policy);
    else return f(policy);
  }
  template <class T>
  struct is_variant : std::false_type {};
  template <class... T>
  struct is_variant<std::variant<T...>> : std::true_type {};

  /// A hash of every parameter's and buffer's name and shape.
  template <class B>
  static std::uint64_t layout_signature(const parameter_store<B>& params, const std::vector<buffer<B>>& buffers) {
    std::uint64_t h = fnv1a64_offset;
    const auto mix = [&](const std::string& s, Index rows, Index cols) {
      const Index shape[2] = {rows, cols};
      h = fnv1a64(shape, sizeof shape, fnv1a64(s.data(), s.size(), h));
    };
    for (const auto& p : params) mix(p.name, p.value->rows(), p.value->cols());
    for (const auto& b : buffers) mix(b.name, b.value->rows(), b.value->cols());
    return h;
  }

  void check_agreement(std::uint64_t mine, const char* what) { strata::check_agreement(comm_, mine, "DataParallel", what); }

  template <class B>
  void broadcast_matrix(typename B::matrix& m) {
    host_matrix<typename B::scalar> host;
    B::download(m, host);
    comm_.broadcast(host.data(), static_cast<std::size_t>(host.size()), 0);
    B::upload(host, m);
  }

  Comm comm_;
  data_parallel_options options_;
  reduction_type reduction_;
  sharding_type sharding_;
  std::vector<float> staging_;  ///< device backends: the value buffer on the host (start-up)
};

}  // namespace strata
