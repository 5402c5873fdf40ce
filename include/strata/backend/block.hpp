#pragma once
/// \file block.hpp
/// Copying rectangular blocks between matrices on any backend: the kernels behind slicing
/// inputs, concatenating branch outputs and stacking shared-network applications.

#include "../core/config.hpp"

namespace strata {

/// Where a block starts in a matrix.
struct block_origin {
  Index row = 0, col = 0;
};

/// dst[dst_at + (i, j)] (+)= src[src_at + (i, j)] for a `rows x cols` block. With `accumulate`
/// the block is added, otherwise it overwrites. Both matrices must already be large enough.
template <class B>
void copy_block(const typename B::matrix& src, block_origin src_at, typename B::matrix& dst,
                block_origin dst_at, Index rows, Index cols, bool accumulate = false) {
  using T = typename B::scalar;
  const T* s = B::data(src) + src_at.row + src_at.col * src.rows();
  T* d = B::data(dst) + dst_at.row + dst_at.col * dst.rows();
  const Index ls = src.rows(), ld = dst.rows();
  // Column by column: each column of the block is contiguous in both matrices.
  if (accumulate)
    B::for_each_element(rows, cols, [=] STRATA_HD(Index r, Index j) { d[r + j * ld] += s[r + j * ls]; });
  else
    B::for_each_element(rows, cols, [=] STRATA_HD(Index r, Index j) { d[r + j * ld] = s[r + j * ls]; });
}

}  // namespace strata
