// One table of single-threaded kernels per instruction set. Every entry works
// on a caller-chosen slice of the work (rows, tiles, GEMV steps, heads) so
// that ops.cpp can split it across threads without changing any result: each
// output element is computed by the same code whatever the split, or summed
// from exact integer pieces, so results are bit-identical for every thread count.
//
// kernels/scalar/ fills every entry and defines "correct"; the SIMD tables
// start from the scalar one and override what they accelerate. tests/native
// checks every entry of every runnable table against the scalar table.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "ternary_format.h"

namespace bitnet {

// IEEE binary16 storage, converted explicitly (no compiler _Float16 needed).
using f16_t = uint16_t;

// How a streaming read prefetches. Which is fastest depends on the machine and
// on the load width (docs/kernels.md), so a read bandwidth quoted as a
// roofline is the best of all of them. kNonTemporalNearPaged adds the GEMV's
// once-per-page prefetch further ahead (stream_prefetch.h).
enum class ReadPrefetch { kNone, kT0Far, kNonTemporalNear, kNonTemporalNearPaged };
constexpr ReadPrefetch kReadPrefetches[] = {ReadPrefetch::kNone, ReadPrefetch::kT0Far,
                                            ReadPrefetch::kNonTemporalNear, ReadPrefetch::kNonTemporalNearPaged};

// A word for GemvWalk::poll that is never set.
inline const std::atomic<uint32_t> kNeverPolled{0};

// A GEMV walk over the steps [begin, end) of one matrix. A step is one quad of
// row tiles of one chunk: step s is quad s % w.quads() of chunk s / w.quads(),
// so the steps follow the packed layout in memory order. After each step the
// kernel calls after_step with the number of steps completed (their sums
// stored); when the word poll points to is set (another thread asks for the
// tail of the walk), the caller's hook may hand that tail over by lowering end
// (never below the steps completed), ops.cpp.
struct GemvWalk {
  size_t end;
  // The hook runs after any step that finds *poll nonzero: a plain load per
  // step, no call.
  const std::atomic<uint32_t>* poll = &kNeverPolled;
  void (*hook)(GemvWalk& walk, size_t done) = nullptr;
  void* context = nullptr;

  void after_step(size_t done) {
    if (poll->load(std::memory_order_relaxed) != 0) hook(*this, done);
  }
};

struct KernelTable {
  const char* isa_name;

  // --- BitNet b1.58 activation quantization (reference section 2.2) --------
  // Returns max_k |x_k| (NaN-free input assumed; the caller validates).
  float (*absmax)(const float* x, size_t n);
  // q[k] = clamp(round_half_even(x[k] * scale), -128, 127) for k < n.
  void (*quantize_i8)(const float* x, size_t n, float scale, int8_t* q);

  // --- ternary GEMV (decode): y = W q * out_scale, W in TernaryView layout --
  // Bytes of lookup tables that gemv_prepare builds per kChunkCols columns.
  size_t ternary_table_bytes_per_chunk;
  // Builds the lookup tables of chunks [c0, c1) from q (length padded_cols,
  // zero beyond the logical K) into tables + c * ternary_table_bytes_per_chunk.
  // tables is 64-byte aligned.
  void (*ternary_gemv_prepare)(const int8_t* q, size_t c0, size_t c1, uint8_t* tables);
  // sums[n] += sum of W[n][k] * q[k] over the columns k of the step's chunk,
  // for the rows n of the step's quad, for the steps [begin, walk.end)
  // (begin < walk.end) in order. sums: w.padded_rows() int32, 64-byte aligned.
  // The steps of one chunk lie one after another, and the next chunk's follow,
  // so a thread's range of steps is one contiguous run of memory; splitting a
  // GEMV into ranges adds the same exact integers in any split.
  void (*ternary_gemv_steps)(const TernaryView& w, const uint8_t* tables, size_t begin, GemvWalk& walk,
                             int32_t* sums);
  // The first matrix multiplied by q: ternary_gemv_steps that also builds the
  // tables of each chunk it walks from q into tables (as ternary_gemv_prepare),
  // so that an ISA may build tables while the weights stream in. The other
  // matrices of the same q then reuse them through ternary_gemv_steps.
  void (*ternary_gemv_build_steps)(const TernaryView& w, const int8_t* q, size_t begin, GemvWalk& walk,
                                   uint8_t* tables, int32_t* sums);

  // --- ternary GEMM (prefill): m tokens at once ------------------------------
  // q: m rows of w.padded_cols() int8 each, row stride q_stride (>= padded_cols),
  // zero-padded; out_scale[m]; y: m rows of stride y_stride floats.
  // y[i][n] = (float)(sum_k W[n][k] * q[i][k]) * out_scale[i] for tiles [t0, t1).
  void (*ternary_gemm_tiles)(const TernaryView& w, const int8_t* q, size_t q_stride, size_t m,
                             const float* out_scale, float* y, size_t y_stride, size_t t0,
                             size_t t1);

  // --- float kernels (all f32 math) -----------------------------------------
  // y[i] = x[i] * (1 / sqrt(mean(x^2) + eps)) * g[i]. y may alias x.
  void (*rmsnorm)(const float* x, const float* g, size_t n, float eps, float* y);
  // Rotate-half RoPE, in place, on n_heads consecutive heads of head_dim
  // floats: for j < head_dim/2, (v[j], v[j+half]) rotated by the angle whose
  // cos/sin are cos_half[j]/sin_half[j].
  void (*rope)(float* v, size_t n_heads, size_t head_dim, const float* cos_half,
               const float* sin_half);
  // `group` query heads sharing one KV head (grouped-query attention) over
  // t_len cached positions (f16 K and V rows of head_dim, consecutive
  // positions kv_stride elements apart). For each head h (q and out hold the
  // group's heads one after another, head_dim floats each):
  // out_h = softmax(q_h.K_t * scale) . V_t, softmax in f32.
  // scores: group * t_len floats of scratch.
  void (*attend)(const float* q, size_t group, const f16_t* k, const f16_t* v, size_t kv_stride,
                 size_t t_len, size_t head_dim, float scale, float* scores, float* out);
  // Elementwise: out may alias gate or up.
  // out[i] = relu(gate[i])^2 * up[i]        (BitNet b1.58 2B4T FFN)
  void (*relu2_gate)(const float* gate, const float* up, size_t n, float* out);
  // out[i] = silu(gate[i]) * up[i]          (Llama-style BitNet FFN)
  void (*silu_gate)(const float* gate, const float* up, size_t n, float* out);
  // y[i] += x[i]
  void (*add_inplace)(float* y, const float* x, size_t n);
  // f16 <-> f32 rows (embedding lookup, KV cache writes).
  void (*f16_to_f32)(const f16_t* x, size_t n, float* y);
  void (*f32_to_f16)(const float* x, size_t n, f16_t* y);

  // --- LM head (full-precision logits) --------------------------------------
  // y[n] = sum_k W[n][k] * x[k] for rows [r0, r1); W f16 row-major, k stride = cols.
  void (*matvec_f16)(const f16_t* w, size_t cols, const float* x, float* y, size_t r0, size_t r1);
  // y[n] = (float)(sum_k W8[n][k] * q[k]) * row_scale[n] * x_inv_scale for rows
  // [r0, r1); W8 int8 row-major with row stride cols_padded (a multiple of 64,
  // zero-padded), q int8 of cols_padded (zero-padded). Integer sums are exact.
  void (*matvec_i8)(const int8_t* w, size_t cols_padded, const int8_t* q, const float* row_scale,
                    float x_inv_scale, float* y, size_t r0, size_t r1);
  // The 4-bit LM head that picks decode's candidate rows (Session::lm_head):
  // y[n] = (float)(sum_k (W4[n][k] - 8) * q[k]) * row_scale[n] * x_inv_scale
  // for rows [r0, r1). W4 holds unsigned nibbles (weight + 8, 0..15),
  // cols_padded / 2 bytes per row, cols_padded a multiple of kQ4BlockCols:
  // byte b of a row's block j holds column j * 128 + b in its low nibble and
  // j * 128 + 64 + b in its high nibble, so one 64-byte load unpacks into two
  // 64-column runs. q int8 of cols_padded (zero-padded). Integer sums are exact.
  void (*matvec_q4)(const uint8_t* w, size_t cols_padded, const int8_t* q, const float* row_scale,
                    float x_inv_scale, float* y, size_t r0, size_t r1);

  // --- memory ---------------------------------------------------------------
  // Reads bytes (a multiple of 64) of data once, front to back, prefetching as
  // `how` says, with the ISA's widest loads; returns the sum of its 64-bit
  // words (mod 2^64), the same for every ISA and every `how`.
  uint64_t (*stream_read)(const uint8_t* data, size_t bytes, ReadPrefetch how);
};

// Columns per packed block of the 4-bit LM head (64 bytes of nibbles).
constexpr size_t kQ4BlockCols = 128;

const KernelTable& scalar_kernels();
// Each returns nullptr when this binary was built without that ISA.
const KernelTable* avx2_kernels();
const KernelTable* avx512_kernels();
const KernelTable* neon_kernels();

// Scalar helpers every ISA file may use for tails.
float f16_to_f32_scalar(f16_t h);
f16_t f32_to_f16_scalar(float f);  // round to nearest even, NaN/Inf preserved

// The scalar ternary_gemv_prepare: "tables" that are a copy of the activations,
// which the scalar and NEON GEMV walks read.
void copy_activations_as_tables(const int8_t* q, size_t c0, size_t c1, uint8_t* tables);

}  // namespace bitnet
