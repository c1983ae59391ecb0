// NEON ternary kernels (Armv8.2 dot product). Each tile is expanded to int8
// weights in {-1, 0, +1} laid out for sdot (4 rows x 4 columns per register),
// then multiplied against the activations with sdot by element, which sums 4
// products into each int32 lane exactly. GEMV is the one-token case; its
// "tables" are the activations themselves (the scalar prepare entry).
// docs/kernels.md records why this design was chosen for NEON.
#include <arm_neon.h>

#include <vector>

#include "../gemv_walk.h"
#include "neon.h"

namespace bitnet {

namespace {

constexpr size_t kKStep = 4;                                   // columns per int32 lane
constexpr size_t kStepsPerChunk = kChunkCols / kKStep;         // 32
constexpr size_t kRowQuads = kRowTile / 4;                     // registers of 4 rows x 4 columns
constexpr size_t kStepBytes = kRowTile * kKStep;               // 256
constexpr size_t kExpandedChunkBytes = kChunkCols * kRowTile;  // 8 KB

// Expands one block (one tile, one chunk) to int8 w: 16 bytes = 4 rows x 4
// columns for 4-column step s and row quad r at s * 256 + r * 16.
void expand_block(const BlockPlanes& blk, int8_t* dst) {
  // Byte l of a quad is row l / 4 of the quad and column l % 4 of the step.
  static const uint8_t kReplicate[4][16] = {
      {0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3},
      {4, 4, 4, 4, 5, 5, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7},
      {8, 8, 8, 8, 9, 9, 9, 9, 10, 10, 10, 10, 11, 11, 11, 11},
      {12, 12, 12, 12, 13, 13, 13, 13, 14, 14, 14, 14, 15, 15, 15, 15}};
  static const uint8_t kBits[2][16] = {{1, 2, 4, 8, 1, 2, 4, 8, 1, 2, 4, 8, 1, 2, 4, 8},
                                       {16, 32, 64, 128, 16, 32, 64, 128, 16, 32, 64, 128, 16, 32, 64, 128}};
  const uint8x16_t bits[2] = {vld1q_u8(kBits[0]), vld1q_u8(kBits[1])};
  for (size_t g = 0; g < kChunkGroups; ++g) {
    for (size_t slice = 0; slice < kRowTile / 16; ++slice) {
      const uint8x16_t plus = vld1q_u8(blk.group(g) + 16 * slice);
      const uint8x16_t minus = vld1q_u8(blk.group(g) + kPlaneBytes + 16 * slice);
      for (size_t j = 0; j < 4; ++j) {
        const uint8x16_t rep = vld1q_u8(kReplicate[j]);
        const uint8x16_t p = vqtbl1q_u8(plus, rep), m = vqtbl1q_u8(minus, rep);
        for (size_t h = 0; h < 2; ++h) {
          // vtst gives 0xFF (-1) where the bit is set: w = [minus] - [plus] as int8.
          const int8x16_t v = vsubq_s8(vreinterpretq_s8_u8(vtstq_u8(m, bits[h])),
                                       vreinterpretq_s8_u8(vtstq_u8(p, bits[h])));
          vst1q_s8(dst + (2 * g + h) * kStepBytes + 16 * (4 * slice + j), v);
        }
      }
    }
  }
}

// Expands one tile (all chunks): chunk c's steps at c * kExpandedChunkBytes.
void expand_tile(const TernaryView& w, size_t tile, int8_t* out) {
  for (size_t c = 0; c < w.chunks(); ++c) expand_block(w.block(c, tile), out + c * kExpandedChunkBytes);
}

// Stores (float)sums * scale for the logical rows of a 64-row tile starting at row0.
void store_tile(const int32x4_t* sums, float scale, size_t row0, size_t n_rows, float* y) {
  for (size_t r = 0; r < kRowQuads; ++r) {
    const size_t row = row0 + 4 * r;
    if (row >= n_rows) break;
    const float32x4_t v = vmulq_n_f32(vcvtq_f32_s32(sums[r]), scale);
    if (n_rows - row >= 4) {
      vst1q_f32(y + row, v);
    } else {
      float lanes[4];
      vst1q_f32(lanes, v);
      for (size_t i = 0; row + i < n_rows; ++i) y[row + i] = lanes[i];
    }
  }
}

// acc[r] += W(step s0 + lane) . q[4 * lane .. 4 * lane + 3] for the 16 row quads.
template <int kLane>
inline void dot_step(const int8_t* wk, int8x16_t q16, int32x4_t* acc) {
  for (size_t r = 0; r < kRowQuads; ++r) acc[r] = vdotq_laneq_s32(acc[r], vld1q_s8(wk + 16 * r), q16, kLane);
}

// acc += the expanded steps [0, steps) . q[0, 4 * steps).
void dot_steps(const int8_t* expanded, size_t steps, const int8_t* q, int32x4_t* acc) {
  for (size_t s = 0; s < steps; s += 4) {
    const int8x16_t q16 = vld1q_s8(q + s * kKStep);
    const int8_t* wk = expanded + s * kStepBytes;
    dot_step<0>(wk, q16, acc);
    dot_step<1>(wk + kStepBytes, q16, acc);
    dot_step<2>(wk + 2 * kStepBytes, q16, acc);
    dot_step<3>(wk + 3 * kStepBytes, q16, acc);
  }
}

// m tokens (rows of q, stride q_stride) against tiles [t0, t1).
void tiles_times_tokens(const TernaryView& w, const int8_t* q, size_t q_stride, size_t m,
                        const float* out_scale, float* y, size_t y_stride, size_t t0, size_t t1) {
  thread_local std::vector<int8_t> expanded;
  expanded.resize(w.chunks() * kExpandedChunkBytes);
  const size_t steps = w.chunks() * kStepsPerChunk;
  for (size_t tile = t0; tile < t1; ++tile) {
    expand_tile(w, tile, expanded.data());
    for (size_t i = 0; i < m; ++i) {
      int32x4_t acc[kRowQuads];
      for (auto& a : acc) a = vdupq_n_s32(0);
      const int8_t* qi = q + i * q_stride;
      dot_steps(expanded.data(), steps, qi, acc);
      store_tile(acc, out_scale[i], tile * kRowTile, w.rows, y + i * y_stride);
    }
  }
}

// One token, chunk c of the quad of tiles starting at tile t: each block is
// expanded and consumed at once, in memory order.
void quad_dots(const TernaryView& w, const uint8_t* tables, size_t c, size_t t, int32_t* sums) {
  const int8_t* q = reinterpret_cast<const int8_t*>(tables) + c * kChunkCols;
  alignas(16) int8_t expanded[kExpandedChunkBytes];
  for (size_t i = t; i < t + w.quad_tiles(t); ++i) {
    expand_block(w.block(c, i), expanded);
    int32_t* dst = sums + i * kRowTile;
    int32x4_t acc[kRowQuads];
    for (size_t r = 0; r < kRowQuads; ++r) acc[r] = vld1q_s32(dst + 4 * r);
    dot_steps(expanded, kStepsPerChunk, q, acc);
    for (size_t r = 0; r < kRowQuads; ++r) vst1q_s32(dst + 4 * r, acc[r]);
  }
}

using NeonGemv = QuadGemv<copy_activations_as_tables, quad_dots>;

}  // namespace

void fill_neon_ternary(KernelTable& k) {
  // ternary_table_bytes_per_chunk and ternary_gemv_prepare stay the scalar ones
  // (a copy of the activations), which is what quad_dots reads.
  k.ternary_gemv_steps = NeonGemv::steps;
  k.ternary_gemv_build_steps = NeonGemv::build_steps;
  k.ternary_gemm_tiles = tiles_times_tokens;
}

}  // namespace bitnet
