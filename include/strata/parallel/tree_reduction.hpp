#pragma once
/// \file tree_reduction.hpp
/// `detail::tree_reduction<Comm>`, DataParallel's deterministic way to sum gradients (the policy
/// behind `DeterministicTree`; the contract is in bucketed_reduction.hpp): the global batch is
/// cut into `blocks` equal sample blocks (a power of two); each block gets its own
/// forward/backward, and block gradients are added in one fixed pairwise tree
/// ((b0+b1)+(b2+b3))+... A rank owns an aligned run of blocks, sums its subtree locally, and the
/// ranks' subtrees are combined in the same tree order by the owner of each slice of the gradient
/// (all-to-all, ordered sum, all-gather straight into the gradient buffer). Every rank count that
/// divides `blocks` therefore produces the same bits, given the same threads per rank (Eigen's
/// GEMM blocking may depend on the thread count). BatchNorm statistics are per block.

#include <algorithm>
#include <cstddef>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../core/parameter_store.hpp"
#include "../layers/layer.hpp"
#include "host_staging.hpp"
#include "optimizer_sharding.hpp"

namespace strata::detail {

template <class Comm>
class tree_reduction {
 public:
  tree_reduction(Comm comm, Index blocks) : comm_(std::move(comm)), blocks_(blocks) {
    const Index p = comm_.size();
    const auto power_of_two = [](Index v) { return v > 0 && (v & (v - 1)) == 0; };
    if (!power_of_two(blocks) || !power_of_two(p) || blocks % p != 0)
      throw config_error(concat("DataParallel (deterministic): ", blocks, " sample blocks over ", p,
                                " ranks; both must be powers of two and the ranks must divide the blocks"));
  }

  /// This rank's aligned run of sample blocks.
  std::pair<Index, Index> local_range(Index global_batch) const {
    const Index per_rank = blocks_ / comm_.size(), r = comm_.rank();
    const Index begin = block_start(global_batch, r * per_rank), end = block_start(global_batch, (r + 1) * per_rank);
    return {begin, end - begin};
  }
  /// One pass per block (relative to the rank's share).
  std::vector<std::pair<Index, Index>> local_blocks(Index global_batch) const {
    const Index offset = local_range(global_batch).first, per_rank = blocks_ / comm_.size();
    std::vector<std::pair<Index, Index>> blocks;
    for (Index k = comm_.rank() * per_rank; k < (comm_.rank() + 1) * per_rank; ++k) {
      const Index begin = block_start(global_batch, k), end = block_start(global_batch, k + 1);
      blocks.emplace_back(begin - offset, end - begin);
    }
    return blocks;
  }

  template <class B>
  void prepare(parameter_store<B>&, bool) {}
  gradient_listener* listener(bool) { return nullptr; }

  /// Adds the block just computed to the local tree.
  template <class B>
  void block_done(parameter_store<B>& params) {
    const auto n = static_cast<std::size_t>(params.buffer_size());
    if (tree_.empty() || tree_elements_ != n) {
      // log2(blocks) + 1 partial sums at most, each padded to whole slices for the all-to-all;
      // allocated once (fresh pages every step would cost more than the additions).
      const auto p = static_cast<std::size_t>(comm_.size());
      std::size_t levels = 1;
      for (Index b = 1; b < blocks_; b *= 2) ++levels;
      tree_.assign(levels, std::vector<float>(((n + p - 1) / p) * p, 0.0f));
      slices_.assign(tree_[0].size(), 0.0f);
      levels_.assign(levels, 0);
      used_ = 0;
      tree_elements_ = n;
    }
    const float* g = on_host<B>(params.gradients(), n, staging_);
    // The new block is the right neighbour of a level-0 partial sum, or starts one.
    if (used_ > 0 && levels_[used_ - 1] == 0) {
      float* out = tree_[used_ - 1].data();
      for (std::size_t i = 0; i < n; ++i) out[i] = out[i] + g[i];
      levels_[used_ - 1] = 1;
    } else {
      std::copy(g, g + n, tree_[used_].data());
      levels_[used_++] = 0;
    }
    while (used_ >= 2 && levels_[used_ - 2] == levels_[used_ - 1]) {  // left + right, as in the tree
      float* left = tree_[used_ - 2].data();
      const float* right = tree_[used_ - 1].data();
      for (std::size_t i = 0; i < n; ++i) left[i] = left[i] + right[i];
      ++levels_[used_ - 2];
      --used_;
    }
  }

  /// Combines the ranks' subtrees: every gradient becomes the sum over all blocks (with a shard:
  /// this rank's part of it, there).
  template <class B>
  void reduce(parameter_store<B>& params, gradient_shard* shard) {
    if (used_ != 1)
      throw error(concat("DataParallel (deterministic): ", used_, " partial sums after the local blocks; "
                         "block_done must be called once per block"));
    used_ = 0;
    std::vector<float>& mine = tree_[0];  // this rank's subtree sum, zero padded to p slices
    const auto n = static_cast<std::size_t>(params.buffer_size());
    const auto p = static_cast<std::size_t>(comm_.size());
    const float* sum = mine.data();
    std::size_t count = n;
    if (p > 1) {
      // Rank j owns slice j (m values); it receives slice j of every rank's subtree sum and adds
      // them in the tree's order.
      const std::size_t m = mine.size() / p;
      comm_.all_to_all(mine.data(), slices_.data(), m);
      for (std::size_t width = 1; width < p; width *= 2)
        for (std::size_t left = 0; left + width < p; left += 2 * width)
          for (std::size_t i = 0; i < m; ++i) slices_[left * m + i] = slices_[left * m + i] + slices_[(left + width) * m + i];
      sum = slices_.data();
      count = m;
    }
    if (shard != nullptr) {  // the owner keeps its slice (the same cut: ceil(N / P) per rank)
      std::copy(sum, sum + count, shard->gradient.data());
      return;
    }
    float* g = on_host<B>(params.gradients(), n, staging_);
    if (p > 1) {
      std::vector<std::size_t> counts(p);
      for (std::size_t r = 0; r < p; ++r) counts[r] = std::min(count, n - std::min(n, r * count));
      comm_.all_gather(sum, g, counts);
    } else {
      std::copy(sum, sum + n, g);
    }
    back_from_host<B>(g, n, params.gradients());
  }

 private:
  Index block_start(Index global_batch, Index block) const { return block * global_batch / blocks_; }

  Comm comm_;
  Index blocks_;
  std::vector<std::vector<float>> tree_;  ///< partial sums (a stack), preallocated
  std::size_t tree_elements_ = 0;         ///< elements of the buffers the tree was sized for
  std::vector<int> levels_;               ///< tree level of each partial sum in use
  std::size_t used_ = 0;                  ///< partial sums in use
  std::vector<float> slices_;             ///< the owned slice of every rank's sum
  std::vector<float> staging_;            ///< device backends: the gradient buffer on the host
};

}  // namespace strata::detail
