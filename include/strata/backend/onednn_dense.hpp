#pragma once
/// \file onednn_dense.hpp
/// A dense layer's evaluation-mode product `Y = W X + b` on oneDNN's matmul, in fp32, bf16 or
/// int8 (component Strata::onednn, Debian's libdnnl-dev). Inference only: the weights are
/// converted and laid out for the kernel once, when the kernel is made, and every batch then
/// converts only its input.
///
/// Precisions:
///   fp32  the same arithmetic as training (oneDNN's own GEMM)
///   bf16  inputs and weights rounded to bfloat16 (8 bits of mantissa), products summed in fp32;
///         needs AVX512_BF16 (or AMX) to be faster than fp32
///   int8  weights symmetric per output row (scale 127 / max|W_r|), inputs by a calibrated scale
///         (127 / max|x|, or 255 / max x and unsigned when the calibration saw no negative
///         input, as behind a ReLU), products summed in int32 and scaled back to fp32;
///         needs AVX512_VNNI (or AVX-VNNI) to be faster than fp32
/// On machines without the instructions oneDNN would emulate them slower than fp32 (bf16) or
/// with halved weights (int8): the kernel refuses them there (config_error with the reason from
/// `precision_unavailable`), so callers fall back to fp32 with a message. Written for oneDNN 2.x
/// (its output-scale attributes; 3.x replaced them).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>
#if (defined(__AVX512F__) && defined(__AVX512BW__)) || defined(__AVX512BF16__)
#include <immintrin.h>
#endif

static_assert(DNNL_VERSION_MAJOR == 2, "strata/backend/onednn_dense.hpp is written for oneDNN 2.x");

#include "../core/config.hpp"
#include "../core/error.hpp"

namespace strata {

/// The arithmetic of evaluation-mode dense products.
enum class precision { fp32, bf16, int8 };

inline const char* to_string(precision p) {
  switch (p) {
    case precision::fp32: return "fp32";
    case precision::bf16: return "bf16";
    case precision::int8: return "int8";
  }
  return "?";
}

/// "fp32", "bf16" or "int8"; anything else is a config_error.
inline precision parse_precision(const std::string& name) {
  for (precision p : {precision::fp32, precision::bf16, precision::int8})
    if (name == to_string(p)) return p;
  throw config_error("unknown precision '" + name + "' (fp32, bf16 or int8)");
}

/// Why `p` would not run faster than fp32 on this machine ("" when it would): the instruction
/// set oneDNN found lacks bf16 or int8 dot products.
inline std::string precision_unavailable(precision p) {
  using isa = dnnl::cpu_isa;
  const isa found = dnnl::get_effective_cpu_isa();
  const bool bf16 = found == isa::avx512_core_bf16 || found == isa::avx512_core_amx;
  const bool vnni = bf16 || found == isa::avx512_core_vnni || found == isa::avx2_vnni;
  if (p == precision::bf16 && !bf16) return "this CPU has no AVX512_BF16 instructions, so bf16 would be slower than fp32";
  if (p == precision::int8 && !vnni) return "this CPU has no VNNI instructions, so int8 would be slower than fp32";
  return "";
}

namespace detail {
/// `count` values of `x` times `scale`, rounded to the nearest integer (ties to even, as oneDNN's
/// reorders round) and saturated to `Q`'s range (int8 or uint8); NaN becomes the range's lower end.
/// Written here rather than left to a oneDNN reorder: on the descriptor model's 1,613-wide input
/// oneDNN 2.6's reorder (its generic jit:uni kernel) took 30% of the int8 model's time; with this
/// loop the model runs 9% faster on one thread and 19% on two (bench_end_to_end, batch 1,024).
template <class Q>
void quantize(const float* x, std::size_t count, float scale, Q* out) {
  static_assert(std::is_same_v<Q, std::int8_t> || std::is_same_v<Q, std::uint8_t>, "int8 or uint8");
  constexpr float lowest = std::is_signed_v<Q> ? -128.0f : 0.0f, highest = std::is_signed_v<Q> ? 127.0f : 255.0f;
  std::size_t i = 0;
#if defined(__AVX512F__) && defined(__AVX512BW__)
  const __m512 s = _mm512_set1_ps(scale), lo = _mm512_set1_ps(lowest), hi = _mm512_set1_ps(highest);
  for (; i + 16 <= count; i += 16) {
    // max(v, lo) returns lo for NaN; the clamped value converts exactly in the current (nearest-even) mode.
    const __m512 v = _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(_mm512_loadu_ps(x + i), s), lo), hi);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(v)));
  }
#endif
  for (; i < count; ++i) {
    float v = x[i] * scale;
    v = v > lowest ? v : lowest;
    v = v < highest ? v : highest;
    out[i] = static_cast<Q>(std::nearbyint(v));
  }
}

/// `count` values of `x` rounded to bfloat16 (their upper 16 bits after rounding to nearest, ties
/// to even, as oneDNN's reorders round; NaN stays a quiet NaN), for the same reason as quantize.
inline void round_to_bf16(const float* x, std::size_t count, std::uint16_t* out) {
  std::size_t i = 0;
#if defined(__AVX512BF16__)
  for (; i + 16 <= count; i += 16)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(_mm512_loadu_ps(x + i))));
#endif
  for (; i < count; ++i) {
    std::uint32_t bits;
    std::memcpy(&bits, x + i, sizeof bits);
    const bool nan = (bits & 0x7FFFFFFFu) > 0x7F800000u;
    out[i] = static_cast<std::uint16_t>(nan ? (bits >> 16) | 0x40u : (bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
  }
}
}  // namespace detail

/// The evaluation-mode product of one dense layer on oneDNN (see the file comment). Not
/// copyable (it owns oneDNN objects) and not for concurrent use: forward keeps per-batch-size
/// buffers; one per layer and thread.
class onednn_dense {
 public:
  /// `weight`: the layer's `rows x inputs` column-major weights; `bias`: `rows` values or null.
  /// For int8, `input_range` is the calibrated max|x| of the layer's input (> 0) and
  /// `nonnegative_input` says the calibration saw no negative input; other precisions ignore both.
  onednn_dense(const float* weight, Index rows, Index inputs, const float* bias, precision p, float input_range = 0.0f,
               bool nonnegative_input = false)
      : rows_(rows), inputs_(inputs), precision_(p), engine_(dnnl::engine::kind::cpu, 0), stream_(engine_) {
    if (rows <= 0 || inputs <= 0)
      throw shape_error(detail::concat("onednn_dense: a ", rows, " x ", inputs, " weight matrix"));
    if (p == precision::int8 && !(input_range > 0.0f && std::isfinite(input_range)))
      throw config_error(detail::concat("onednn_dense: int8 needs a positive, finite input range, got ", input_range));
    if (const std::string why = precision_unavailable(p); !why.empty()) throw config_error("onednn_dense: " + why);
    for (Index i = 0; i < rows * inputs; ++i)
      if (!std::isfinite(weight[i])) throw data_error(detail::concat("onednn_dense: weight ", i, " is not finite"));
    bias_.assign(static_cast<std::size_t>(rows), 0.0f);
    if (bias != nullptr) bias_.assign(bias, bias + rows);
    // W (rows x inputs, column-major) is oneDNN's K x N weights, row-major.
    weight_.assign(weight, weight + rows * inputs);
    if (p == precision::int8) {
      input_unsigned_ = nonnegative_input;
      input_scale_ = (nonnegative_input ? 255.0f : 127.0f) / input_range;
      output_scales_.resize(static_cast<std::size_t>(rows));
      weight_scales_.resize(static_cast<std::size_t>(rows));
      for (Index r = 0; r < rows; ++r) {
        float largest = 0.0f;
        for (Index c = 0; c < inputs; ++c) largest = std::max(largest, std::abs(weight[c * rows + r]));
        const float s = largest > 0.0f ? 127.0f / largest : 1.0f;
        weight_scales_[static_cast<std::size_t>(r)] = s;
        output_scales_[static_cast<std::size_t>(r)] = 1.0f / (s * input_scale_);
        // oneDNN scales the int32 sum with its bias: the bias goes in at the sum's scale.
        bias_[static_cast<std::size_t>(r)] *= s * input_scale_;
      }
    }
    bias_memory_ = dnnl::memory(dnnl::memory::desc({1, rows_}, dt::f32, tag::ab), engine_, bias_.data());
  }
  onednn_dense(const onednn_dense&) = delete;
  onednn_dense& operator=(const onednn_dense&) = delete;

  Index rows() const { return rows_; }
  Index inputs() const { return inputs_; }
  precision arithmetic() const { return precision_; }

  /// `y = W x + b` for `x`, `inputs x n` column-major; `y` receives `rows x n` column-major.
  /// `rectified`: `y = max(W x + b, 0)`, the ReLU applied by the matmul as it writes `y`.
  void forward(const float* x, Index n, float* y, bool rectified = false) { forward_strided(x, inputs_, n, y, rectified); }

  /// As `forward`, sample j's inputs starting at `x + j * stride` (`stride >= inputs`): rows of a
  /// larger matrix, read in place.
  void forward_strided(const float* x, Index stride, Index n, float* y, bool rectified = false) {
    if (n <= 0) return;
    if (stride < inputs_)
      throw shape_error(detail::concat("onednn_dense: a stride of ", stride, " for ", inputs_, " inputs per sample"));
    try {
      // fp32 reads the input where it is; bf16 and int8 convert it to a contiguous copy first.
      plan& p = plan_for(n, rectified, precision_ == precision::fp32 ? stride : inputs_);
      dnnl::memory src(p.src_f32, engine_, const_cast<float*>(x));
      dnnl::memory dst(p.dst, engine_, y);
      if (precision_ != precision::fp32) convert_input(x, stride, n, p.src.get_data_handle());
      p.matmul.execute(stream_, {{DNNL_ARG_SRC, precision_ == precision::fp32 ? src : p.src},
                                 {DNNL_ARG_WEIGHTS, *p.weights},
                                 {DNNL_ARG_BIAS, bias_memory_},
                                 {DNNL_ARG_DST, dst}});
      stream_.wait();
    } catch (const dnnl::error& e) {
      throw error(detail::concat("onednn_dense (", to_string(precision_), ", ", rows_, " x ", inputs_, ", batch ", n,
                                 "): oneDNN: ", e.what()));
    }
  }

 private:
  using dt = dnnl::memory::data_type;
  using tag = dnnl::memory::format_tag;

  /// A plan's batch size, whether the ReLU is fused and the stride of the fp32 input it reads.
  using plan_key = std::tuple<Index, bool, Index>;
  /// The primitives for one batch size.
  struct plan {
    dnnl::memory::desc src_f32, dst;
    dnnl::memory src;         // the converted input (bf16, int8; convert_input)
    dnnl::matmul matmul;
    const dnnl::memory* weights = nullptr;  // the weights in the layout this matmul chose
    std::uint64_t last_use = 0;
  };

  /// The batch's input (sample j's at `x + j * stride`) in bf16, or in int8 or uint8 at the
  /// calibrated scale, contiguous in `to`, by column blocks on all threads.
  void convert_input(const float* x, Index stride, Index n, void* to) const {
    const Index block = std::max<Index>(1, 8192 / inputs_);  // columns per piece: some 8,192 values
    const Index pieces = (n + block - 1) / block;
    // Contiguous columns convert as one run per piece, strided ones one column at a time.
    const Index runs = stride == inputs_ ? 1 : block, run_columns = stride == inputs_ ? block : 1;
#if defined(_OPENMP)
#pragma omp parallel for schedule(static) if (n * inputs_ >= (1 << 16))
#endif
    for (Index piece = 0; piece < pieces; ++piece)
      for (Index run = 0; run < runs; ++run) {
        const Index first = piece * block + run * run_columns;
        if (first >= n) break;
        const auto count = static_cast<std::size_t>(std::min(run_columns, n - first) * inputs_);
        const float* from = x + first * stride;
        if (precision_ == precision::bf16)
          detail::round_to_bf16(from, count, static_cast<std::uint16_t*>(to) + first * inputs_);
        else if (input_unsigned_)
          detail::quantize(from, count, input_scale_, static_cast<std::uint8_t*>(to) + first * inputs_);
        else
          detail::quantize(from, count, input_scale_, static_cast<std::int8_t*>(to) + first * inputs_);
      }
  }

  dt source_type() const {
    switch (precision_) {
      case precision::bf16: return dt::bf16;
      case precision::int8: return input_unsigned_ ? dt::u8 : dt::s8;
      default: return dt::f32;
    }
  }
  dt weight_type() const { return precision_ == precision::bf16 ? dt::bf16 : precision_ == precision::int8 ? dt::s8 : dt::f32; }

  plan& plan_for(Index n, bool rectified, Index stride) {
    ++uses_;
    const plan_key key{n, rectified, stride};
    auto found = plans_.find(key);
    if (found != plans_.end()) {
      found->second.last_use = uses_;
      return found->second;
    }
    // A stream of batches meets few sizes (the batch and the last one): keep a handful, dropping
    // the least recently used.
    if (plans_.size() >= 8)
      plans_.erase(std::min_element(plans_.begin(), plans_.end(),
                                    [](const auto& a, const auto& b) { return a.second.last_use < b.second.last_use; }));
    plan p;
    p.last_use = uses_;
    const dnnl::memory::dim m = n, k = inputs_, cols = rows_;
    p.src_f32 = dnnl::memory::desc({m, k}, dt::f32, dnnl::memory::dims{stride, 1});
    p.dst = dnnl::memory::desc({m, cols}, dt::f32, tag::ab);
    const dnnl::memory::desc src({m, k}, source_type(), tag::ab), any_weights({k, cols}, weight_type(), tag::any),
        bias({1, cols}, dt::f32, tag::ab);
    dnnl::primitive_attr attr;
    if (precision_ == precision::int8) attr.set_output_scales(1 << 1, output_scales_);
    if (rectified) {  // after the bias and the int8 output scale, as a ReLU layer would
      dnnl::post_ops relu;
      relu.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
      attr.set_post_ops(relu);
    }
    const dnnl::memory::desc& reads = precision_ == precision::fp32 ? p.src_f32 : src;  // fp32: in place, strided
    const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(reads, any_weights, bias, p.dst), attr, engine_);
    p.weights = &weights_in(pd.weights_desc());
    p.matmul = dnnl::matmul(pd);
    if (precision_ != precision::fp32) {
      p.src = dnnl::memory(src, engine_);
    }
    return plans_.emplace(key, std::move(p)).first->second;
  }

  /// The weights in `layout` (the layout a matmul chose; batch sizes may choose differently),
  /// converted on first use. int8 weights are rounded here (oneDNN's reorders do not scale per
  /// row into its blocked int8 layouts).
  const dnnl::memory& weights_in(const dnnl::memory::desc& layout) {
    for (const auto& laid_out : layouts_)
      if (laid_out->get_desc() == layout) return *laid_out;
    std::vector<std::int8_t> rounded;
    dnnl::memory from;
    if (precision_ == precision::int8) {
      rounded.resize(weight_.size());
      for (Index c = 0; c < inputs_; ++c)
        for (Index r = 0; r < rows_; ++r) {
          const float q = std::nearbyint(weight_[static_cast<std::size_t>(c * rows_ + r)] * weight_scales_[static_cast<std::size_t>(r)]);
          rounded[static_cast<std::size_t>(c * rows_ + r)] = static_cast<std::int8_t>(std::max(-127.0f, std::min(127.0f, q)));
        }
      from = dnnl::memory(dnnl::memory::desc({inputs_, rows_}, dt::s8, tag::ab), engine_, rounded.data());
    } else {
      from = dnnl::memory(dnnl::memory::desc({inputs_, rows_}, dt::f32, tag::ab), engine_, weight_.data());
    }
    auto weights = std::make_unique<dnnl::memory>(layout, engine_);
    dnnl::reorder(from, *weights).execute(stream_, from, *weights);
    stream_.wait();
    layouts_.push_back(std::move(weights));
    return *layouts_.back();
  }

  Index rows_, inputs_;
  precision precision_;
  bool input_unsigned_ = false;
  std::uint64_t uses_ = 0;
  float input_scale_ = 1.0f;
  std::vector<float> weight_, bias_, weight_scales_, output_scales_;
  dnnl::engine engine_;
  dnnl::stream stream_;
  dnnl::memory bias_memory_;
  std::vector<std::unique_ptr<dnnl::memory>> layouts_;  // the weights, once per layout in use
  std::map<plan_key, plan> plans_;
};

}  // namespace strata
