#pragma once
/// \file data_parallel.hpp
/// `DataParallel<Comm, Reduction, Sharding>`: every rank holds the whole model and computes its
/// share of each global minibatch; gradients are summed over ranks before the optimizer step.
///
/// Two ways to sum, chosen by type (`BucketedOverlap`, `DeterministicTree`) or at run time by
/// `data_parallel_options::deterministic`:
///   * fast (default): the rank's columns go through one forward/backward; gradients are cut into
///     fixed buckets (about `bucket_bytes` each, in the order backward announced the gradients
///     on the first step; reverse build order until then) and each bucket's
///     non-blocking all-reduce starts as soon as backward has written its last gradient, so
///     communication overlaps the rest of backward. Results match serial training to float
///     rounding (MPI and the GEMMs sum in an order that depends on the rank count).
///   * deterministic: the global batch is cut into `blocks` equal sample blocks (a power of two);
///     each block gets its own forward/backward, and block gradients are added in one fixed
///     pairwise tree ((b0+b1)+(b2+b3))+... A rank owns an aligned run of blocks, sums its subtree
///     locally, and the ranks' subtrees are combined in the same tree order by the owner of each
///     slice of the gradient (all-to-all, ordered sum, all-gather). Every rank count that divides
///     `blocks` therefore produces the same bits, given the same threads per rank (Eigen's GEMM
///     blocking may depend on the thread count). BatchNorm statistics are per block in this mode.
/// Start-up broadcasts rank 0's weights and buffers and checks that every rank built the same
/// model with the same settings, failing on every rank with a clear message if not.
///
/// BatchNorm normalises with each rank's own samples (as without synchronised batch norm in
/// other frameworks), so a BatchNorm model is not bit-for-bit the serial one; running statistics
/// are averaged over ranks after every step so all ranks evaluate the same model.
///
/// `ShardedOptimizer` / `shard_optimizer` (ZeRO stage 1): each rank owns 1/P of the flattened parameters; gradients
/// are reduce-scattered to their owner, the owner alone runs the optimizer on its slice (so the
/// optimizer state per rank falls as 1/P), and the updated slices are all-gathered into every
/// rank's weights. The optimizer gets one slice per tensor piece in its shard (with the tensor's
/// group), so per-group rates, frozen groups and norm clipping (one all-reduce of the squared
/// norm) give the same update as without sharding.
/// Checkpoints hold the optimizer state in the unsharded, per-parameter layout, so they move
/// freely between sharded and unsharded runs and between rank counts.

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <type_traits>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "../backend/eigen_backend.hpp"
#include "../core/error.hpp"
#include "../core/hash.hpp"
#include "../core/parameter.hpp"
#include "../core/tensor.hpp"
#include "../layers/layer.hpp"
#include "../optim/clip.hpp"
#include "communicator.hpp"
#include "serial.hpp"

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

/// Data parallelism over `Comm`, with its reduction and sharding chosen by type
/// (`DataParallel<MpiCommunicator, DeterministicTree, ShardedOptimizer>`) or at run time
/// (`DataParallel<MpiCommunicator>` and `data_parallel_options`). A choice fixed by the type
/// overrides the options' field; the other options (blocks, bucket size) apply either way.
template <class Comm, class Reduction = ChosenAtRunTime, class Sharding = ChosenAtRunTime>
class DataParallel : public Serial, private gradient_listener {
 public:
  static constexpr const char* name = "data-parallel";

  explicit DataParallel(Comm comm = {}, data_parallel_options options = {})
      : comm_(std::move(comm)), options_(fixed_by_type(options)) {
    if (options_.deterministic) {
      const Index p = comm_.size(), b = options_.blocks;
      const auto power_of_two = [](Index v) { return v > 0 && (v & (v - 1)) == 0; };
      if (!power_of_two(b) || !power_of_two(p) || b % p != 0)
        throw config_error(detail::concat("DataParallel (deterministic): ", b, " sample blocks over ", p,
                                          " ranks; both must be powers of two and the ranks must divide the blocks"));
    }
  }

  // Optimizer slices point into the shard buffers' heap storage, which moves with them.
  DataParallel(DataParallel&&) noexcept = default;
  DataParallel& operator=(DataParallel&&) noexcept = default;

  // A rank that unwinds after an error may leave bucket all-reduces running: their requests own
  // the bucket buffers and keep them until MPI is done (MpiCommunicator), so nothing here frees
  // memory under a transfer and no destructor is needed.

  int rank() const { return comm_.rank(); }
  int ranks() const { return comm_.size(); }
  bool is_root() const { return comm_.rank() == 0; }
  Comm& communicator() { return comm_; }
  const data_parallel_options& options() const { return options_; }
  /// Whether gradients are summed in the fixed tree order (constant when the type fixes it).
  bool deterministic() const {
    if constexpr (std::is_same_v<Reduction, ChosenAtRunTime>) return options_.deterministic;
    else return Reduction::deterministic;
  }
  /// Whether the optimizer state is sharded (constant when the type fixes it).
  bool sharded() const {
    if constexpr (std::is_same_v<Sharding, ChosenAtRunTime>) return options_.shard_optimizer;
    else return Sharding::sharded;
  }

  /// First column and number of columns of a global batch that this rank computes: an even
  /// split, or in deterministic mode this rank's aligned run of sample blocks.
  std::pair<Index, Index> local_range(Index global_batch) const {
    const Index p = ranks(), r = rank();
    if (!deterministic()) return {r * global_batch / p, (r + 1) * global_batch / p - r * global_batch / p};
    const Index per_rank = options_.blocks / p;
    const Index begin = block_start(global_batch, r * per_rank), end = block_start(global_batch, (r + 1) * per_rank);
    return {begin, end - begin};
  }

  /// Column ranges of this rank's share that get one forward/backward each (relative to it).
  std::vector<std::pair<Index, Index>> local_blocks(Index global_batch) const {
    const auto [offset, count] = local_range(global_batch);
    if (!deterministic()) return {{0, count}};
    std::vector<std::pair<Index, Index>> blocks;
    const Index per_rank = options_.blocks / ranks();
    for (Index k = rank() * per_rank; k < (rank() + 1) * per_rank; ++k) {
      const Index begin = block_start(global_batch, k), end = block_start(global_batch, k + 1);
      blocks.emplace_back(begin - offset, end - begin);
    }
    return blocks;
  }

  /// Broadcasts rank 0's parameters and buffers after checking that every rank has the same
  /// model layout and settings; lays out the gradient buckets.
  template <class B>
  void synchronize(std::vector<parameter<B>>& params, std::vector<buffer<B>>& buffers, std::uint64_t settings = 0) {
    const std::uint64_t mode = mix64(deterministic() + 2u * sharded()) ^
                               mix64(static_cast<std::uint64_t>(options_.blocks) + 0x100u) ^ mix64(options_.bucket_bytes + 0x200u);
    check_agreement(layout_signature(params, buffers) ^ (settings * 0x9E3779B97F4A7C15ull) ^ mode,
                    "built a different model or uses different settings (model layout, batch size, seeds, optimizer "
                    "or parallel mode)");
    for (auto& p : params) broadcast_matrix<B>(*p.value);
    for (auto& b : buffers) broadcast_matrix<B>(*b.value);
    // Buckets only serve fast mode; the other modes must not pay for a gradient-sized copy.
    if (!deterministic() && !sharded() && ranks() > 1) plan_buckets(params);
  }

  /// The listener that starts bucket all-reduces during backward (fast mode only).
  gradient_listener* listener() {
    return deterministic() || sharded() || ranks() == 1 ? nullptr : this;
  }

  /// What the optimizer updates: every parameter whole, or with sharding the pieces of the
  /// parameters that fall in this rank's shard, one slice per tensor (so groups and per-tensor
  /// rules apply), pointing into the shard buffers.
  template <class B>
  std::vector<parameter_slice<B>> optimizer_slices(std::vector<parameter<B>>& params) {
    if (!sharded()) return whole_slices(params);
    if constexpr (!std::is_same_v<B, EigenBackend<float>>) {
      throw config_error("DataParallel: optimizer sharding needs EigenBackend<float>");
    } else {
      if (!shard_planned_) plan_shard(params);
      std::vector<parameter_slice<B>> slices;
      const std::size_t begin = shard_size_ * static_cast<std::size_t>(rank()), end = begin + shard_size_;
      std::size_t offset = 0;
      for (std::size_t k = 0; k < params.size(); ++k) {
        const auto n = static_cast<std::size_t>(params[k].value->size());
        const std::size_t from = std::max(begin, offset), to = std::min(end, offset + n);
        if (from < to)
          slices.push_back({params[k].name, shard_value_.data() + (from - begin), shard_grad_.data() + (from - begin),
                            static_cast<Index>(to - from), 1, static_cast<Index>(from - offset), k, params[k].group});
        offset += n;
      }
      return slices;
    }
  }

  /// The squared norm of the gradients that train: with sharding each rank holds disjoint
  /// pieces, so one all-reduce of a scalar sums them; otherwise every rank holds them all.
  template <class B>
  double squared_gradient_norm(const std::vector<parameter_slice<B>>& slices, const std::vector<parameter<B>>&) {
    double sum = strata::squared_gradient_norm(slices);
    if (sharded() && ranks() > 1) comm_.all_reduce_sum(&sum, 1);
    return sum;
  }

  /// With sharding: every rank's updated slice is gathered into every rank's weights.
  template <class B>
  void after_step(std::vector<parameter<B>>& params) {
    if (!sharded()) return;
    std::vector<float>& flat = flat_scratch();
    comm_.all_gather(shard_value_.data(), flat.data(), std::vector<std::size_t>(static_cast<std::size_t>(ranks()), shard_size_));
    unflatten<B>(flat, params, &parameter<B>::value);
  }

  /// Calls f(name, matrix&) for the optimizer's state in the unsharded layout ("<parameter>.<state>");
  /// with sharding, each state kind is gathered from every rank's pieces into whole tensors
  /// first and whatever f leaves in them (a checkpoint being loaded) is scattered back.
  /// Collective with sharding.
  template <class Optimizer, class B, class F>
  void for_each_optimizer_state(Optimizer& optimizer, std::vector<parameter<B>>& params, F&& f) {
    if (!sharded()) return optimizer.for_each_state(f);
    if constexpr (std::is_same_v<B, EigenBackend<float>>) {
      // The optimizer lists its tensors slice by slice, kind by kind; this rank's slices of one
      // kind, end to end, are its shard of that state.
      const std::size_t kinds = optimizer.state_kinds().size();
      std::vector<typename B::matrix*> tensors;
      optimizer.for_each_state([&](const std::string&, typename B::matrix& m) { tensors.push_back(&m); });
      const auto for_each_piece = [&](std::size_t kind, auto&& copy) {
        std::size_t at = 0;
        for (std::size_t j = kind; j < tensors.size(); j += kinds) at += copy(*tensors[j], at);
      };
      std::vector<float> mine(shard_size_, 0.0f), flat(shard_size_ * static_cast<std::size_t>(ranks()));
      typename B::matrix whole;
      for (std::size_t kind = 0; kind < kinds; ++kind) {
        for_each_piece(kind, [&](typename B::matrix& m, std::size_t at) {
          std::memcpy(mine.data() + at, m.data(), sizeof(float) * static_cast<std::size_t>(m.size()));
          return static_cast<std::size_t>(m.size());
        });
        comm_.all_gather(mine.data(), flat.data(), std::vector<std::size_t>(static_cast<std::size_t>(ranks()), shard_size_));
        std::size_t offset = 0;
        for (auto& p : params) {
          whole.resize(p.value->rows(), p.value->cols());
          const auto n = static_cast<std::size_t>(whole.size());
          std::memcpy(whole.data(), flat.data() + offset, sizeof(float) * n);
          f(p.name + "." + optimizer.state_kinds()[kind], whole);
          std::memcpy(flat.data() + offset, whole.data(), sizeof(float) * n);
          offset += n;
        }
        const float* back = flat.data() + shard_size_ * static_cast<std::size_t>(rank());
        for_each_piece(kind, [&](typename B::matrix& m, std::size_t at) {
          std::memcpy(m.data(), back + at, sizeof(float) * static_cast<std::size_t>(m.size()));
          return static_cast<std::size_t>(m.size());
        });
      }
    }
  }

  /// After each block's backward (deterministic mode: adds the block to the local tree).
  template <class B>
  void block_done(std::vector<parameter<B>>& params) {
    if (!deterministic()) return;
    if (tree_.empty()) {
      // log2(blocks) + 1 partial sums at most, each padded to whole slices for the all-to-all;
      // allocated once (fresh pages every step would cost more than the additions).
      std::size_t n = 0;
      for (auto& p : params) n += static_cast<std::size_t>(p.gradient->size());
      const auto p = static_cast<std::size_t>(ranks());
      std::size_t levels = 1;
      for (Index b = 1; b < options_.blocks; b *= 2) ++levels;
      tree_.assign(levels, std::vector<float>(((n + p - 1) / p) * p, 0.0f));
      slices_.assign(tree_[0].size(), 0.0f);
      levels_.assign(levels, 0);
      used_ = 0;
    }
    // The new block is the right neighbour of a level-0 partial sum, or starts one.
    if (used_ > 0 && levels_[used_ - 1] == 0) {
      add_gradients<B>(params, tree_[used_ - 1].data());
      levels_[used_ - 1] = 1;
    } else {
      copy_gradients<B>(params, tree_[used_].data());
      levels_[used_++] = 0;
    }
    while (used_ >= 2 && levels_[used_ - 2] == levels_[used_ - 1]) {  // left + right, as in the tree
      float* left = tree_[used_ - 2].data();
      const float* right = tree_[used_ - 1].data();
      for (std::size_t i = 0, n = tree_[0].size(); i < n; ++i) left[i] = left[i] + right[i];
      ++levels_[used_ - 2];
      --used_;
    }
  }

  /// Makes every parameter's gradient the sum over ranks.
  template <class B>
  void reduce_gradients(std::vector<parameter<B>>& params) {
    if (sharded()) {
      if (!shard_planned_) plan_shard(params);
      // The owner's optimizer starts from the current weights of its slice (and only those are read).
      copy_slice_out<B>(params, shard_size_ * static_cast<std::size_t>(rank()), shard_value_.data(), shard_size_);
    }
    if (deterministic()) return reduce_deterministic<B>(params);
    if (sharded()) {
      std::vector<float>& flat = flat_scratch();
      copy_gradients<B>(params, flat.data());
      comm_.reduce_scatter_sum(flat.data(), shard_grad_.data(), std::vector<std::size_t>(static_cast<std::size_t>(ranks()), shard_size_));
      return;
    }
    if (ranks() == 1) return;
    if (planned_for_ != params.size()) plan_buckets(params);
    if (!order_known_) {
      // First step: backward announced every gradient in its real order (Fork runs its branches
      // first to last, so it is not simply reverse build order). Buckets follow it from now on;
      // it is the same on every rank, so every rank plans the same buckets.
      if (announced_.size() == params.size()) plan_buckets(params, announced_);
      order_known_ = true;
    }
    start_complete_buckets(true);
    for (auto& bucket : buckets_) bucket.request.wait();
    for (auto& bucket : buckets_) {
      std::size_t offset = 0;
      for (const std::size_t i : bucket.members) offset += copy_in<B>(bucket.values->data() + offset, *params[i].gradient);
      bucket.ready = 0;
    }
    next_to_start_ = 0;
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

  struct bucket {
    std::vector<std::size_t> members;  ///< parameter indices, in the order their values are packed
    std::size_t ready = 0;      ///< members whose gradient backward has announced this step
    /// The members' gradients, packed; shared with the all-reduce in flight, which keeps it.
    std::shared_ptr<std::vector<float>> values = std::make_shared<std::vector<float>>();
    typename Comm::request request;
  };

  Index block_start(Index global_batch, Index block) const { return block * global_batch / options_.blocks; }

  /// A hash of every parameter's and buffer's name and shape.
  template <class B>
  static std::uint64_t layout_signature(const std::vector<parameter<B>>& params, const std::vector<buffer<B>>& buffers) {
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

  // ---- fast mode: buckets -------------------------------------------------------------------

  /// Copies `values` into `target` (a B matrix); returns the count.
  template <class B>
  static std::size_t copy_in(const float* values, typename B::matrix& target) {
    const auto n = static_cast<std::size_t>(target.size());
    if constexpr (std::is_same_v<B, EigenBackend<float>>) {
      std::memcpy(target.data(), values, sizeof(float) * n);
    } else {
      host_matrix<float> host(target.rows(), target.cols());
      std::memcpy(host.data(), values, sizeof(float) * n);
      B::upload(host, target);
    }
    return n;
  }

  /// Copies `source` (a B matrix) to `values`; returns the count.
  template <class B>
  static std::size_t copy_out(const typename B::matrix& source, float* values) {
    const auto n = static_cast<std::size_t>(source.size());
    if constexpr (std::is_same_v<B, EigenBackend<float>>) {
      std::memcpy(values, source.data(), sizeof(float) * n);
    } else {
      host_matrix<float> host;
      B::download(source, host);
      std::memcpy(values, host.data(), sizeof(float) * n);
    }
    return n;
  }

  /// Buckets of about bucket_bytes over the parameters in `order` (default: reverse build order).
  template <class B>
  void plan_buckets(std::vector<parameter<B>>& params, std::vector<std::size_t> order = {}) {
    static_assert(std::is_same_v<typename B::scalar, float>, "DataParallel: float models only for now");
    if (order.empty())
      for (std::size_t n = params.size(); n-- > 0;) order.push_back(n);
    buckets_.clear();
    owner_.clear();
    std::size_t bytes = 0;
    for (const std::size_t n : order) {
      if (buckets_.empty() || bytes >= options_.bucket_bytes) {
        buckets_.emplace_back();
        bytes = 0;
      }
      buckets_.back().members.push_back(n);
      owner_[params[n].gradient] = {buckets_.size() - 1, n};
      bytes += sizeof(float) * static_cast<std::size_t>(params[n].gradient->size());
    }
    for (auto& b : buckets_) {
      std::size_t size = 0;
      for (const std::size_t i : b.members) size += static_cast<std::size_t>(params[i].gradient->size());
      b.values->resize(size);
    }
    // The packer keeps its own copy of the parameter views (pointers into the layers, which stay
    // put when the model or the trainer moves) and no pointer to this strategy.
    pack_ = [params](bucket& b) {
      std::size_t offset = 0;
      for (const std::size_t i : b.members) offset += copy_out<B>(*params[i].gradient, b.values->data() + offset);
    };
    next_to_start_ = 0;
    planned_for_ = params.size();
  }

  /// Starts, in bucket order, every bucket whose gradients are all written (or every remaining
  /// one with `all`): every rank issues the same collectives in the same order.
  void start_complete_buckets(bool all) {
    while (next_to_start_ < buckets_.size() &&
           (all || buckets_[next_to_start_].ready == buckets_[next_to_start_].members.size())) {
      auto& b = buckets_[next_to_start_];
      pack_(b);
      // Buckets still waiting when backward is over have nothing left to overlap with: the
      // blocking all-reduce is faster for them than a non-blocking one (about 2x here).
      if (all) comm_.all_reduce_sum(b.values->data(), b.values->size());
      else b.request = comm_.iall_reduce_sum(b.values);
      ++next_to_start_;
    }
  }

  /// Called by layers during backward: when a bucket is complete, it and every complete bucket
  /// before it start, always in bucket order so every rank issues the same collectives.
  void gradient_ready(const void* gradient) override {
    const auto it = owner_.find(gradient);
    if (it == owner_.end()) return;
    if (!order_known_) {  // first step: only learn the order (see reduce_gradients)
      announced_.push_back(it->second.second);
      return;
    }
    ++buckets_[it->second.first].ready;
    start_complete_buckets(false);
    for (std::size_t k = 0; k < next_to_start_; ++k) buckets_[k].request.test();  // let MPI progress
  }

  // ---- ZeRO stage 1 -----------------------------------------------------------------------------

  /// Copies flat elements [begin, begin + count) of the parameters' values to `out` (past the
  /// last parameter the slice is zero padding and left as it is).
  template <class B>
  static void copy_slice_out(std::vector<parameter<B>>& params, std::size_t begin, float* out, std::size_t count) {
    std::size_t offset = 0;
    host_matrix<float> host;
    for (auto& p : params) {
      const auto n = static_cast<std::size_t>(p.value->size());
      const std::size_t from = std::max(begin, offset), to = std::min(begin + count, offset + n);
      if (from < to) {
        const float* values = p.value->data();
        if constexpr (!std::is_same_v<B, EigenBackend<float>>) {
          B::download(*p.value, host);
          values = host.data();
        }
        std::memcpy(out + (from - begin), values + (from - offset), sizeof(float) * (to - from));
      }
      offset += n;
    }
  }

  /// A reused buffer of P shard sizes (the zero padding past the parameters stays zero).
  std::vector<float>& flat_scratch() {
    flat_.resize(shard_size_ * static_cast<std::size_t>(ranks()), 0.0f);
    return flat_;
  }

  /// Rank r owns flat elements [r m, (r + 1) m) of the parameters (m = ceil(N / P), zero padded).
  template <class B>
  void plan_shard(std::vector<parameter<B>>& params) {
    std::size_t n = 0;
    for (auto& p : params) n += static_cast<std::size_t>(p.value->size());
    const auto p = static_cast<std::size_t>(ranks());
    shard_size_ = (n + p - 1) / p;
    shard_value_ = host_matrix<float>::Zero(static_cast<Index>(shard_size_), 1);
    shard_grad_ = host_matrix<float>::Zero(static_cast<Index>(shard_size_), 1);
    shard_planned_ = true;
  }

  /// Copies consecutive runs of `flat` into each parameter's `member` (value or gradient).
  template <class B, class Member>
  static void unflatten(const std::vector<float>& flat, std::vector<parameter<B>>& params, Member member) {
    const float* from = flat.data();
    for (auto& p : params) from += copy_in<B>(from, *(p.*member));
  }

  // ---- deterministic mode: a fixed pairwise tree over sample blocks ---------------------------

  /// Copies every parameter's gradient, in build order, to `out`.
  template <class B>
  static void copy_gradients(std::vector<parameter<B>>& params, float* out) {
    for (auto& p : params) out += copy_out<B>(*p.gradient, out);
  }

  /// out[i] = out[i] + gradient[i] over the parameters in build order (out is the left operand).
  template <class B>
  void add_gradients(std::vector<parameter<B>>& params, float* out) {
    for (auto& p : params) {
      const float* g;
      if constexpr (std::is_same_v<B, EigenBackend<float>>) {
        g = p.gradient->data();
      } else {
        B::download(*p.gradient, staging_);
        g = staging_.data();
      }
      const auto n = static_cast<std::size_t>(p.gradient->size());
      for (std::size_t i = 0; i < n; ++i) out[i] = out[i] + g[i];
      out += n;
    }
  }

  template <class B>
  void reduce_deterministic(std::vector<parameter<B>>& params) {
    if (used_ != 1)
      throw error(detail::concat("DataParallel (deterministic): ", used_, " partial sums after the local blocks; "
                                 "block_done must be called once per block"));
    used_ = 0;
    std::vector<float>& mine = tree_[0];  // this rank's subtree sum, zero padded to p slices
    std::vector<float>& slices = slices_;
    std::size_t n = 0;
    for (auto& prm : params) n += static_cast<std::size_t>(prm.gradient->size());
    const std::size_t p = static_cast<std::size_t>(ranks());
    if (p > 1) {
      // Rank j owns slice j (m values); it receives slice j of every rank's subtree sum, adds
      // them in the tree's order, and all-gathers the result.
      const std::size_t m = mine.size() / p;
      comm_.all_to_all(mine.data(), slices.data(), m);
      for (std::size_t width = 1; width < p; width *= 2)
        for (std::size_t left = 0; left + width < p; left += 2 * width)
          for (std::size_t i = 0; i < m; ++i) slices[left * m + i] = slices[left * m + i] + slices[(left + width) * m + i];
      if (sharded()) {  // the owner keeps its slice; weights are gathered after the step
        std::memcpy(shard_grad_.data(), slices.data(), sizeof(float) * m);
        return;
      }
      comm_.all_gather(slices.data(), mine.data(), std::vector<std::size_t>(p, m));
    } else if (sharded()) {
      std::memcpy(shard_grad_.data(), mine.data(), sizeof(float) * n);
      return;
    }
    float* from = mine.data();
    for (auto& prm : params) from += copy_in<B>(from, *prm.gradient);
  }

  Comm comm_;
  data_parallel_options options_;
  std::vector<bucket> buckets_;
  std::unordered_map<const void*, std::pair<std::size_t, std::size_t>> owner_;  ///< gradient -> (bucket, parameter)
  std::vector<std::size_t> announced_;  ///< parameter indices in the order backward announced them
  bool order_known_ = false;
  std::function<void(bucket&)> pack_;
  std::size_t next_to_start_ = 0, planned_for_ = 0;
  std::vector<std::vector<float>> tree_;  ///< deterministic mode: partial sums (a stack), preallocated
  std::vector<int> levels_;               ///< tree level of each partial sum in use
  std::size_t used_ = 0;                  ///< partial sums in use
  std::vector<float> slices_;             ///< the owned slice of every rank's sum
  host_matrix<float> staging_;            ///< device gradients pass through here
  std::size_t shard_size_ = 0;
  host_matrix<float> shard_value_, shard_grad_;
  std::vector<float> flat_;  ///< ZeRO: the whole parameter vector, padded (reused every step)
  bool shard_planned_ = false;
};

}  // namespace strata
