#pragma once
/// \file sparse_input_dense.hpp
/// `SparseInputDense`: a dense layer `Y = W X + b` for inputs that are mostly zero, such as
/// Morgan fingerprints (2,048 bits of which a molecule sets 2-5%). It computes the same function
/// as `Dense` but by the input's non-zeros:
///   forward   y_j = b + sum over non-zero x_ij of x_ij W(:, i)   (a few dozen weight columns
///             per sample instead of all of them: ~30x fewer FLOPs at 3% density)
///   backward  dW(:, i) = sum over samples j with x_ij != 0 of x_ij dy_j   (only those columns;
///             the others are zero), db = row sums of dy, dX = Wᵀ dY only when asked (dense).
/// The non-zeros are found by one vectorised pass over the input, so the input stays an ordinary
/// dense batch and the layer drops into any model in place of the first Dense. The forward sums
/// run tile by tile of output rows from a packed copy of W that stays in L2 (see forward()); the
/// copy, refreshed when the weights may have changed, holds as much memory again as W (8 MiB at
/// 2,048 x 1,024 floats). Evaluation passes may run in int8 instead (sparse_int8.hpp), from an
/// int8 copy of a quarter of that size. Host backends only.

#include <algorithm>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "dense.hpp"
#include "sparse_int8.hpp"

namespace strata {
namespace detail {

/// Bit b set where x[b] != 0, for the first `count` (at most 64) values. Sixteen at a time, a
/// loop compilers turn into one vector compare.
template <class T>
std::uint64_t nonzero_bits(const T* x, Index count) {
  std::uint64_t word = 0;
  if (count == 64) {
    for (int part = 0; part < 4; ++part) {
      std::uint32_t bits = 0;
      for (int b = 0; b < 16; ++b) bits |= static_cast<std::uint32_t>(x[16 * part + b] != T(0)) << b;
      word |= static_cast<std::uint64_t>(bits) << (16 * part);
    }
  } else {
    for (Index b = 0; b < count; ++b) word |= static_cast<std::uint64_t>(x[b] != T(0)) << b;
  }
  return word;
}

inline Index popcount(std::uint64_t word) {
#if defined(__GNUC__)
  return __builtin_popcountll(word);
#else
  Index count = 0;
  for (; word != 0; word &= word - 1) ++count;
  return count;
#endif
}

/// The position of the lowest set bit of a non-zero word.
inline Index lowest_bit(std::uint64_t word) {
#if defined(__GNUC__)
  return __builtin_ctzll(word);
#else
  Index b = 0;
  for (; (word & 1) == 0; word >>= 1) ++b;
  return b;
#endif
}

}  // namespace detail

template <class B>
class sparse_input_dense_layer;

/// A `Dense<Width>` whose input is sparse: same options, same initial weights for the same seed.
template <Index Width = dynamic>
struct SparseInputDense : Dense<Width> {
  static constexpr const char* kind = "SparseInputDense";
  template <class B>
  using impl = sparse_input_dense_layer<B>;
  using Dense<Width>::Dense;
};

template <class B>
class sparse_input_dense_layer {
 public:
  using matrix = typename B::matrix;
  using T = typename B::scalar;
  static_assert(detail::host_storage<B>, "SparseInputDense runs on host backends (EigenBackend)");

  template <Index W>
  explicit sparse_input_dense_layer(const SparseInputDense<W>& spec) : width_(spec.width), init_(spec.init), bias_(spec.bias) {}

  Index build(build_context& ctx, Index input_width) {
    matrix whole;
    path_ = detail::draw_dense_weight<B>(ctx, width_, input_width, init_, whole);
    B::copy(whole, weight_);
    detail::zero_dense_state<B>(weight_grad_, bias_value_, bias_grad_, width_, input_width, bias_);
    return width_;
  }

  const matrix& forward(const matrix& x, const pass_info& pass) { return forward_pass(x, pass, false); }
  /// `max(W x + b, 0)`: this layer and a ReLU after it in one pass, each tile of the output
  /// rectified while it is still in L1 (evaluation passes: the fused pair below).
  const matrix& forward_rectified(const matrix& x, const pass_info& pass) { return forward_pass(x, pass, true); }

  const matrix& backward(const matrix& x, const matrix& dy, const pass_info& pass, bool need_dx) {
    index_by_input(x.rows());
    const Index inputs = x.rows(), whole_tiles = width_ / tile;
    const T* g = dy.data();
    T* grad = weight_grad_.data();
    // Column i of dW is summed tile by tile in registers like the forward's output (and written
    // once: no zero fill first); the partial last tile, whose loads would run past dY's end, in
    // plain arithmetic.
#if defined(_OPENMP)
#pragma omp parallel for schedule(dynamic, 16) if (dy.cols() >= 64)
#endif
    for (Index i = 0; i < inputs; ++i) {
      const auto begin = static_cast<std::size_t>(input_start_[static_cast<std::size_t>(i)]);
      const Index count = input_start_[static_cast<std::size_t>(i) + 1] - input_start_[static_cast<std::size_t>(i)];
      const Index* samples = by_input_sample_.data() + begin;
      const T* values = by_input_value_.data() + begin;
      T* column = grad + i * width_;
      for (Index t = 0; t < whole_tiles; ++t)
        tile_sum(nullptr, tile, g + t * tile, width_, samples, values, count, column + t * tile);
      for (Index r = whole_tiles * tile; r < width_; ++r) {
        T sum = T(0);
        for (Index k = 0; k < count; ++k) sum += values[k] * g[samples[k] * width_ + r];
        column[r] = sum;
      }
    }
    pass.gradient_ready(weight_grad_);
    if (bias_) {
      B::row_sum(dy, bias_grad_);
      pass.gradient_ready(bias_grad_);
    }
    if (need_dx) B::gemm(T(1), weight_, true, dy, false, T(0), input_grad_);
    return input_grad_;
  }

  template <class W>
  void describe(W& w) const {
    w.field("width", width_);
    w.field("bias", bias_);
  }
  template <class F>
  void for_each_parameter(F&& f) {
    f(parameter<B>{path_ + ".weight", &weight_, &weight_grad_});
    if (bias_) f(parameter<B>{path_ + ".bias", &bias_value_, &bias_grad_});
  }
  template <class F>
  void for_each_buffer(F&&) {}

  const typename B::parameter_matrix& weight() const { return weight_; }
  /// Non-zero inputs of the last forward pass (its cost is proportional to this).
  Index nonzeros() const { return sample_start_.empty() ? 0 : sample_start_.back(); }

 private:
  /// Whether this pass runs in int8: an evaluation pass whose kernels ask for it (in a float
  /// build with the instructions: see forward).
  bool quantized(const pass_info& pass) const {
    return pass.phase == mode::eval && pass.kernels != nullptr && pass.kernels->quantize_sparse(path_);
  }

  /// The forward pass, `max(·, 0)` on every output when `rectify`.
  const matrix& forward_pass(const matrix& x, const pass_info& pass, bool rectify) {
    if (x.rows() != weight_.cols())
      throw shape_error(detail::concat("layer '", path_, "': expects input of ", weight_.cols(), " rows, got ",
                                       shape_string(x.rows(), x.cols())));
    index_by_sample(x);
    if (!pass.parameters_unchanged) packed_current_ = quantized_current_ = false;
    if constexpr (sparse_int8_available && std::is_same_v<T, float>)
      if (quantized(pass)) return forward_int8(x.cols(), rectify);
    // Packing copies all of W (8 MiB for 2,048 x 1,024): per step in training, once per stream
    // of evaluation batches.
    if (!packed_current_) pack_weight();
    packed_current_ = true;
    const Index n = x.cols(), inputs = weight_.cols();
    B::resize(output_, width_, n);
    const Index* start = sample_start_.data();
    const Index* nonzero_input = inputs_.data();
    const T* nonzero_value = values_.data();
    const T* packed = packed_weight_.data();
    const T* bias = bias_ ? bias_value_.data() : nullptr;
    // Tile by tile of `tile` output rows: the tile's packed weights (inputs x tile, 512 KiB for
    // 2,048 float inputs) stay in L2 while every sample of the batch reads from them, and a sample's
    // slice of the output is summed in registers, bias first, then its non-zeros in input order.
    // (Whole weight columns, sample by sample, came from L3: 59 x 4 KiB per fingerprint.)
    for_each_tile(n, rectify, [&](Index t, Index j, Index row, Index rows, T* y) {
      tile_sum(bias != nullptr ? bias + row : nullptr, rows, packed + t * inputs * tile, tile, nonzero_input + start[j],
               nonzero_value + start[j], start[j + 1] - start[j], y);
    });
    return output_;
  }

  /// `sum(t, j, row, rows, y)` for tile t (output rows [row, row + rows)) of every sample j of
  /// `n`, on all threads, writing y = that tile of sample j's output; then, when `rectify`, a ReLU
  /// over it while it is in L1, as the ReLU layer computes it.
  template <class Sum>
  void for_each_tile(Index n, bool rectify, Sum&& sum) {
    const Index tiles = (width_ + tile - 1) / tile;
    T* out = output_.data();
#if defined(_OPENMP)
#pragma omp parallel for collapse(2) schedule(static) if (n >= 64)
#endif
    for (Index t = 0; t < tiles; ++t)
      for (Index j = 0; j < n; ++j) {
        const Index row = t * tile, rows = std::min(tile, width_ - row);
        T* y = out + j * width_ + row;
        sum(t, j, row, rows, y);
        if (rectify)
          for (Index r = 0; r < rows; ++r) y[r] = activation::relu{}.value(y[r]);
      }
  }

  /// The forward pass in int8 (sparse_int8.hpp) over the indexed batch of `n` samples.
  const matrix& forward_int8(Index n, bool rectify) {
#if defined(STRATA_SPARSE_INT8)
    static_assert(tile == detail::int8_sparse_weights::tile, "int8 tiles are the fp32 tiles: 64 rows");
    if (!quantized_current_) quantized_weight_.pack(weight_.data(), width_, weight_.cols());
    quantized_current_ = true;
    quantize_samples(n);
    const Index inputs = weight_.cols();
    B::resize(output_, width_, n);
    const Index* start = sample_start_.data();
    const float* bias = bias_ ? bias_value_.data() : nullptr;
    for_each_tile(n, rectify, [&](Index t, Index j, Index row, Index rows, float* y) {
      const Index first = start[j], count = start[j + 1] - first;
      const float* b = bias != nullptr ? bias + row : nullptr;
      if (multiplier_[static_cast<std::size_t>(j)] > 0.0f)
        detail::int8_tile_sum(b, rows, quantized_weight_.packed.data() + t * inputs * tile, inputs_.data() + first,
                              quantized_input_.data() + first, count, quantized_weight_.scale.data() + row,
                              multiplier_[static_cast<std::size_t>(j)], y);
      else
        exact_tile_sum(b, rows, row, inputs_.data() + first, values_.data() + first, count, y);
    });
#else
    (void)n;
    (void)rectify;
#endif
    return output_;
  }

  /// Every sample's input multiplier and its non-zeros in uint8 (sparse_int8.hpp); multiplier 0
  /// marks a sample with a negative or non-finite input, evaluated in fp32.
  void quantize_samples(Index n) {
    multiplier_.resize(static_cast<std::size_t>(n));
    quantized_input_.resize(values_.size());
#if defined(_OPENMP)
#pragma omp parallel for schedule(static) if (n >= 64)
#endif
    for (Index j = 0; j < n; ++j) {
      const Index first = sample_start_[static_cast<std::size_t>(j)], last = sample_start_[static_cast<std::size_t>(j) + 1];
      bool representable = true;
      T largest = T(0);
      for (Index k = first; k < last; ++k) {
        const T v = values_[static_cast<std::size_t>(k)];
        representable = representable && v >= T(0) && v <= std::numeric_limits<T>::max();  // false for NaN
        largest = std::max(largest, v);
      }
      const float m = representable ? detail::sparse_input_multiplier(static_cast<float>(largest)) : 0.0f;
      multiplier_[static_cast<std::size_t>(j)] = m;
      if (representable)
        for (Index k = first; k < last; ++k)
          quantized_input_[static_cast<std::size_t>(k)] = detail::sparse_input_quantized(static_cast<float>(values_[static_cast<std::size_t>(k)]), m);
    }
  }

  /// One tile of one sample in fp32 straight from W: the int8 pass's way for samples it cannot
  /// quantise.
  void exact_tile_sum(const T* bias, Index rows, Index row, const Index* input, const T* value, Index count, T* y) const {
    for (Index r = 0; r < rows; ++r) y[r] = bias != nullptr ? bias[r] : T(0);
    const T* w = weight_.data();
    for (Index k = 0; k < count; ++k) {
      const T* column = w + input[k] * width_ + row;
      for (Index r = 0; r < rows; ++r) y[r] += value[k] * column[r];
    }
  }

  /// The non-zeros of every sample, sample by sample (CSR over samples).
  void index_by_sample(const matrix& x) {
    const Index n = x.cols(), rows = x.rows(), words = (rows + 63) / 64;
    sample_start_.assign(static_cast<std::size_t>(n) + 1, 0);
    nonzero_bits_.resize(static_cast<std::size_t>(n * words));
    const T* data = x.data();
    Index* start = sample_start_.data();
    std::uint64_t* bits = nonzero_bits_.data();
    // One vectorised pass over the dense batch marks the non-zeros in a bitmap (64 inputs a word)
    // and counts them; after a prefix sum, every sample's non-zeros are placed from its bitmap,
    // so the branches are per set bit, not per input. Both passes run on all threads.
#if defined(_OPENMP)
#pragma omp parallel for schedule(static) if (n >= 64)
#endif
    for (Index j = 0; j < n; ++j) {
      Index count = 0;
      for (Index w = 0; w < words; ++w) {
        const std::uint64_t word = detail::nonzero_bits(data + j * rows + 64 * w, std::min<Index>(64, rows - 64 * w));
        bits[j * words + w] = word;
        count += detail::popcount(word);
      }
      start[j + 1] = count;
    }
    for (Index j = 0; j < n; ++j) start[j + 1] += start[j];
    inputs_.resize(static_cast<std::size_t>(sample_start_.back()));
    values_.resize(inputs_.size());
    Index* inputs = inputs_.data();
    T* values = values_.data();
#if defined(_OPENMP)
#pragma omp parallel for schedule(static) if (n >= 64)
#endif
    for (Index j = 0; j < n; ++j) {
      Index k = start[j];
      for (Index w = 0; w < words; ++w)
        for (std::uint64_t word = bits[j * words + w]; word != 0; word &= word - 1) {
          const Index i = 64 * w + detail::lowest_bit(word);
          inputs[k] = i;
          values[k++] = data[j * rows + i];
        }
    }
  }

  /// y[0, rows) = bias (or 0) + sum over the non-zeros of value x weight column, in registers: a
  /// fixed number of SIMD packets, each element summed in the same order (bias, then the
  /// non-zeros in order, one multiply-add each). Input i's `tile` weights start at weight + i stride.
  static void tile_sum(const T* bias, Index rows, const T* weight, Index stride, const Index* input, const T* value,
                       Index count, T* y) {
    using namespace Eigen::internal;
    packet acc[tile_packets];
    if (bias != nullptr && rows == tile) {
      for (int p = 0; p < tile_packets; ++p) acc[p] = ploadu<packet>(bias + p * lanes);
    } else {
      alignas(64) T start[tile] = {};
      if (bias != nullptr) std::copy(bias, bias + rows, start);
      for (int p = 0; p < tile_packets; ++p) acc[p] = pload<packet>(start + p * lanes);
    }
    for (Index k = 0; k < count; ++k) {
      const packet v = pset1<packet>(value[k]);
      const T* w = weight + input[k] * stride;
      for (int p = 0; p < tile_packets; ++p) acc[p] = pmadd(v, ploadu<packet>(w + p * lanes), acc[p]);
    }
    if (rows == tile) {
      for (int p = 0; p < tile_packets; ++p) pstoreu(y + p * lanes, acc[p]);
    } else {
      alignas(64) T sum[tile];
      for (int p = 0; p < tile_packets; ++p) pstore(sum + p * lanes, acc[p]);
      std::copy(sum, sum + rows, y);
    }
  }

  /// W copied tile by tile: tile t holds rows [t tile, (t + 1) tile) of every input column, one
  /// input after another, zero-padded past the last row.
  void pack_weight() {
    const Index inputs = weight_.cols(), tiles = (width_ + tile - 1) / tile;
    packed_weight_.resize(static_cast<std::size_t>(tiles * inputs * tile));
    const T* w = weight_.data();
    T* packed = packed_weight_.data();
#if defined(_OPENMP)
#pragma omp parallel for schedule(static) if (inputs * width_ >= (1 << 16))
#endif
    for (Index t = 0; t < tiles; ++t) {
      const Index row = t * tile, rows = std::min(tile, width_ - row);
      for (Index i = 0; i < inputs; ++i) {
        T* to = std::copy(w + i * width_ + row, w + i * width_ + row + rows, packed + (t * inputs + i) * tile);
        std::fill(to, to + (tile - rows), T(0));
      }
    }
  }

  /// The same non-zeros regrouped by input (CSC), samples in ascending order, for the gradient.
  void index_by_input(Index inputs) {
    input_start_.assign(static_cast<std::size_t>(inputs) + 1, 0);
    for (const Index i : inputs_) ++input_start_[static_cast<std::size_t>(i) + 1];
    for (std::size_t i = 0; i < static_cast<std::size_t>(inputs); ++i) input_start_[i + 1] += input_start_[i];
    by_input_sample_.resize(inputs_.size());
    by_input_value_.resize(inputs_.size());
    fill_.assign(input_start_.begin(), input_start_.end() - 1);
    const auto samples = static_cast<Index>(sample_start_.size()) - 1;
    for (Index j = 0; j < samples; ++j)
      for (Index k = sample_start_[static_cast<std::size_t>(j)]; k < sample_start_[static_cast<std::size_t>(j) + 1]; ++k) {
        const auto slot = static_cast<std::size_t>(fill_[static_cast<std::size_t>(inputs_[static_cast<std::size_t>(k)])]++);
        by_input_sample_[slot] = j;
        by_input_value_[slot] = values_[static_cast<std::size_t>(k)];
      }
  }

  /// Output rows summed in registers per sample: four SIMD packets (64 floats with AVX-512).
  using packet = typename Eigen::internal::packet_traits<T>::type;
  static constexpr int lanes = Eigen::internal::unpacket_traits<packet>::size, tile_packets = 4;
  static constexpr Index tile = lanes * tile_packets;

  Index width_;
  Init init_;
  bool bias_;
  std::string path_;
  typename B::parameter_matrix weight_, weight_grad_, bias_value_, bias_grad_;
  matrix output_, input_grad_;
  std::vector<Index> sample_start_, inputs_, input_start_, by_input_sample_, fill_;
  std::vector<std::uint64_t> nonzero_bits_;  // per sample, one bit per input
  std::vector<T> values_, by_input_value_;
  std::vector<T, Eigen::aligned_allocator<T>> packed_weight_;
  // Whether packed_weight_ and quantized_weight_ hold the current weights: not after any pass
  // that did not promise unchanged parameters, whichever copy that pass used.
  bool packed_current_ = false, quantized_current_ = false;
  detail::int8_sparse_weights quantized_weight_;
  std::vector<std::uint8_t> quantized_input_;
  std::vector<float> multiplier_;  // per sample (0: in fp32)
};

namespace detail {
/// A SparseInputDense layer followed by ReLU runs as one pass in evaluation (the fingerprint
/// models' first two layers): the ReLU is applied to each tile of output while it is in L1.
template <Index Width>
struct fused_pair<SparseInputDense<Width>, ReLU> : std::true_type {
  template <class Sparse, class Relu>
  static bool applies(const Sparse&, const Relu&, const pass_info& pass) {
    return pass.phase == mode::eval;
  }
  template <class Sparse, class Relu, class M>
  static const M& forward(Sparse& sparse, Relu&, const M& x, const pass_info& pass) {
    return sparse.forward_rectified(x, pass);
  }
};
}  // namespace detail

}  // namespace strata
