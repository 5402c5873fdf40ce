#pragma once
/// \file partition.hpp
/// `row_partition`: how a layer splits its output rows across the ranks of a model-parallel
/// group, and the two collectives such a layer needs. A model built with a partition
/// (`model.build(width, seed, &partition)`) has every wide enough Dense layer hold only its
/// rank's rows of the weights:
///   forward   Y_r = W_r X + b_r, then an all-gather of the rows, so every rank has all of Y;
///   backward  dW_r = dY_r Xᵀ and db_r from the rank's rows of dY, and dX = Σ_r W_rᵀ dY_r
///             (an all-reduce over the group).
/// Layers meet the parallel strategy only through this interface (ModelParallel implements it
/// over a communicator); everything else in the model runs replicated on every rank.

#include <cstddef>
#include <type_traits>
#include <vector>

#include "../core/config.hpp"
#include "../core/parameter.hpp"
#include "../core/tensor.hpp"

namespace strata {

/// A model-parallel group of ranks as layers see it.
class row_partition {
 public:
  virtual ~row_partition() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  /// Rank r contributes counts[r] values; `out` receives them all in rank order.
  virtual void all_gather(const float* in, float* out, const std::vector<std::size_t>& counts) = 0;
  virtual void all_gather(const double* in, double* out, const std::vector<std::size_t>& counts) = 0;
  /// In place: every rank gets the sum over the group.
  virtual void all_reduce_sum(float* data, std::size_t n) = 0;
  virtual void all_reduce_sum(double* data, std::size_t n) = 0;

  /// Layers with fewer than this many rows per rank stay whole (replicated): splitting a
  /// one-output layer saves nothing and costs two collectives.
  Index min_rows_per_rank = 8;

  /// Whether a layer of `rows` output rows is split across the group.
  bool splits(Index rows) const { return size() > 1 && rows >= min_rows_per_rank * size(); }

  /// The rows rank `r` holds of a `rows`-row layer: nearly equal consecutive blocks, the first
  /// `rows % size()` ranks one row more.
  row_split rows_of(int r, Index rows) const {
    const Index p = size(), base = rows / p, extra = rows % p;
    row_split s;
    s.offset = r * base + (r < extra ? r : extra);
    s.rows = base + (r < extra ? 1 : 0);
    s.whole_rows = rows;
    return s;
  }
};

namespace detail {


/// Sums `m` over the group in place (staged through host memory for device backends).
template <class B>
void all_reduce_rows(row_partition& group, typename B::matrix& m) {
  if constexpr (host_storage<B>) {
    group.all_reduce_sum(m.data(), static_cast<std::size_t>(m.size()));
  } else {
    host_matrix<typename B::scalar> host;
    B::download(m, host);
    group.all_reduce_sum(host.data(), static_cast<std::size_t>(host.size()));
    B::upload(host, m);
  }
}

/// Stacks every rank's rows (`local`: this rank's `rows x n`) into `whole` (`whole_rows x n`).
/// `gathered` is scratch reused between calls.
template <class B, class Local>
void all_gather_rows(row_partition& group, const Local& local, Index whole_rows,
                     host_matrix<typename B::scalar>& gathered, typename B::matrix& whole) {
  using T = typename B::scalar;
  const Index n = local.cols();
  std::vector<std::size_t> counts(static_cast<std::size_t>(group.size()));
  for (int q = 0; q < group.size(); ++q)
    counts[static_cast<std::size_t>(q)] = static_cast<std::size_t>(group.rows_of(q, whole_rows).rows * n);
  gathered.resize(whole_rows, n);  // as flat storage: rank blocks one after another
  if constexpr (host_storage<B>) {
    group.all_gather(local.data(), gathered.data(), counts);
  } else {
    host_matrix<T> host;
    B::download(local, host);
    group.all_gather(host.data(), gathered.data(), counts);
  }
  host_matrix<T>* target;
  host_matrix<T> staged;
  if constexpr (host_storage<B>) {
    B::resize(whole, whole_rows, n);
    target = &whole;
  } else {
    staged.resize(whole_rows, n);
    target = &staged;
  }
  const T* from = gathered.data();
  for (int q = 0; q < group.size(); ++q) {
    const row_split s = group.rows_of(q, whole_rows);
    target->middleRows(s.offset, s.rows) = Eigen::Map<const host_matrix<T>>(from, s.rows, n);
    from += s.rows * n;
  }
  if constexpr (!host_storage<B>) B::upload(staged, whole);
}

/// Copies rows [split.offset, split.offset + split.rows) of `whole` into `local`.
template <class B, class Local>
void take_rows(const typename B::matrix& whole, const row_split& split, Local& local) {
  using T = typename B::scalar;
  if constexpr (host_storage<B>) {
    B::resize(local, split.rows, whole.cols());
    local = whole.middleRows(split.offset, split.rows);
  } else {
    host_matrix<T> host, part;
    B::download(whole, host);
    part = host.middleRows(split.offset, split.rows);
    B::upload(part, local);
  }
}

}  // namespace detail
}  // namespace strata
