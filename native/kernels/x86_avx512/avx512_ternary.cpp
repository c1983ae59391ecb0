// AVX-512 ternary kernels (needs BW, VBMI, VNNI). docs/kernels.md explains the
// designs and their measured speeds.
//
// GEMV: a plane byte holds 8 weights of one row, so it indexes a 256-entry
// table of partial sums of the 8 matching activations. Each group's table is
// stored as 256 low bytes then 256 high bytes of the int16 sums; vpermi2b looks
// up 64 rows at once (two 128-entry halves picked by the index's top bit).
// Sums stay int16 within a 128-column chunk (exact: |sum| <= 128 * 128) and
// are widened to int32 per chunk.
//
// GEMM: one tile's blocks are expanded to int8 (w + 1, so the unsigned operand
// of vpdpbusd), then every token is multiplied against them; the +1 adds
// sum_k q[k] per token, which is subtracted at the end.

#include <algorithm>

#include "avx512.h"
#include "avx512_intrinsics.h"
#include "../x86_avx2/tile_gemm.h"

namespace bitnet {

namespace {

constexpr size_t kTableHalf = 256;                       // bytes of the low (or high) byte table
constexpr size_t kGroupTableBytes = 2 * kTableHalf;      // one group: low bytes, then high bytes
constexpr size_t kChunkTableBytes = kChunkGroups * kGroupTableBytes;  // 8 KB: stays in L1

// ---------------------------------------------------------------- GEMV tables

// Builds one group's table T[b] = sum_{i: bit i of b} q[i] from 8 activations.
inline void build_group_table(const int8_t* q, uint8_t* out) {
  // L[i] (i < 16) sums the activations of the low nibble's bits, H[i] those of
  // the high nibble; both are replicated in lanes 0-15 and 16-31.
  static const __mmask32 kNibbleBit[4] = {0xAAAAAAAAu, 0xCCCCCCCCu, 0xF0F0F0F0u, 0xFF00FF00u};
  __m512i lo = _mm512_setzero_si512(), hi = _mm512_setzero_si512();
  for (int j = 0; j < 4; ++j) {
    lo = _mm512_mask_add_epi16(lo, kNibbleBit[j], lo, _mm512_set1_epi16(q[j]));
    hi = _mm512_mask_add_epi16(hi, kNibbleBit[j], hi, _mm512_set1_epi16(q[4 + j]));
  }
  // Entries 32v + i: L[i % 16] + H[2v + i / 16].
  __m512i entries[8];
  for (int v = 0; v < 8; ++v) {
    const __m512i hi_index = _mm512_mask_blend_epi16(0xFFFF0000u, _mm512_set1_epi16(2 * v),
                                                     _mm512_set1_epi16(2 * v + 1));
    entries[v] = _mm512_add_epi16(lo, _mm512_permutexvar_epi16(hi_index, hi));
  }
  // Split the int16 entries into their low bytes and high bytes.
  alignas(64) static const struct ByteIndex {
    uint8_t even[64], odd[64];
    ByteIndex() {
      for (int i = 0; i < 64; ++i) even[i] = static_cast<uint8_t>(2 * i), odd[i] = static_cast<uint8_t>(2 * i + 1);
    }
  } idx;
  const __m512i even = _mm512_load_si512(idx.even), odd = _mm512_load_si512(idx.odd);
  for (int u = 0; u < 4; ++u) {
    _mm512_store_si512(out + 64 * u, _mm512_permutex2var_epi8(entries[2 * u], even, entries[2 * u + 1]));
    _mm512_store_si512(out + kTableHalf + 64 * u,
                       _mm512_permutex2var_epi8(entries[2 * u], odd, entries[2 * u + 1]));
  }
}

void ternary_gemv_prepare(const int8_t* q, size_t c0, size_t c1, uint8_t* tables) {
  for (size_t c = c0; c < c1; ++c)
    for (size_t g = 0; g < kChunkGroups; ++g)
      build_group_table(q + c * kChunkCols + g * kGroupCols,
                        tables + c * kChunkTableBytes + g * kGroupTableBytes);
}

// ---------------------------------------------------------------- GEMV tiles

// One group's table in registers: low bytes of entries [0,64) ... [192,256), then high bytes.
struct GroupTable {
  __m512i lo[4], hi[4];
  explicit GroupTable(const uint8_t* t) {
    for (int i = 0; i < 4; ++i) {
      lo[i] = _mm512_load_si512(t + 64 * i);
      hi[i] = _mm512_load_si512(t + kTableHalf + 64 * i);
    }
  }
  // 256-entry byte lookup of 64 indices: two 128-entry lookups, picked by bit 7.
  static __m512i lookup(const __m512i* t, __m512i index, __mmask64 top) {
    return _mm512_mask_blend_epi8(top, _mm512_permutex2var_epi8(t[0], index, t[1]),
                                  _mm512_permutex2var_epi8(t[2], index, t[3]));
  }
};

// int16 sums of one tile in unpack order: a holds rows 16L+0..7 of each 128-bit
// lane L, b rows 16L+8..15.
struct TileSums {
  __m512i a, b;
};

// sums += (+1 or -1) * T[plane byte] for the 64 rows of one plane.
template <bool kAdd>
inline void accumulate_plane(const GroupTable& t, const uint8_t* plane, TileSums& s) {
  const __m512i index = _mm512_loadu_si512(plane);
  const __mmask64 top = _mm512_movepi8_mask(index);
  const __m512i lo = GroupTable::lookup(t.lo, index, top);
  const __m512i hi = GroupTable::lookup(t.hi, index, top);
  const __m512i a = _mm512_unpacklo_epi8(lo, hi), b = _mm512_unpackhi_epi8(lo, hi);
  if (kAdd) {
    s.a = _mm512_add_epi16(s.a, a);
    s.b = _mm512_add_epi16(s.b, b);
  } else {
    s.a = _mm512_sub_epi16(s.a, a);
    s.b = _mm512_sub_epi16(s.b, b);
  }
}

// Sums of one chunk for kTiles consecutive tiles (blocks[i] = block of tile i),
// prefetching the kTiles blocks at `ahead`.
template <int kTiles>
inline void chunk_tiles(const uint8_t* const* blocks, const uint8_t* ahead, const uint8_t* chunk_tables,
                        TileSums* s) {
  for (int i = 0; i < kTiles; ++i) s[i].a = s[i].b = _mm512_setzero_si512();
  for (size_t g = 0; g < kChunkGroups; ++g) {
    const GroupTable t(chunk_tables + g * kGroupTableBytes);
    for (int i = 0; i < kTiles; ++i) {
      _mm_prefetch(reinterpret_cast<const char*>(ahead + i * kBlockBytes + g * kGroupBytes), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(ahead + i * kBlockBytes + g * kGroupBytes + 64), _MM_HINT_T0);
      const uint8_t* planes = blocks[i] + g * kGroupBytes;
      accumulate_plane<true>(t, planes, s[i]);
      accumulate_plane<false>(t, planes + kPlaneBytes, s[i]);
    }
  }
}

// The int16 sums in unpack order (a: rows {0-7, 16-23, 32-39, 48-55}, b: the
// other 8 of each 16), widened to int32 rows 16j..16j+15 in out[j].
inline void tile_rows(const TileSums& s, __m512i out[4]) {
  // Widened, the quarters of x hold rows {0-7, 16-23}, of y {8-15, 24-31}, then 32-63 likewise.
  const __m512i x0 = _mm512_cvtepi16_epi32(_mm512_castsi512_si256(s.a));
  const __m512i y0 = _mm512_cvtepi16_epi32(_mm512_castsi512_si256(s.b));
  const __m512i x1 = _mm512_cvtepi16_epi32(_mm512_extracti64x4_epi64(s.a, 1));
  const __m512i y1 = _mm512_cvtepi16_epi32(_mm512_extracti64x4_epi64(s.b, 1));
  out[0] = _mm512_shuffle_i64x2(x0, y0, _MM_SHUFFLE(1, 0, 1, 0));
  out[1] = _mm512_shuffle_i64x2(x0, y0, _MM_SHUFFLE(3, 2, 3, 2));
  out[2] = _mm512_shuffle_i64x2(x1, y1, _MM_SHUFFLE(1, 0, 1, 0));
  out[3] = _mm512_shuffle_i64x2(x1, y1, _MM_SHUFFLE(3, 2, 3, 2));
}

// Tiles sharing one load of a group's table registers.
constexpr int kTilesPerStep = 4;

// Blocks prefetched ahead of the sweep, which reads the weights in memory
// order; other distances measured no better (docs/kernels.md). Near the end of
// a matrix the addresses may lie past it: prefetches never fault.
constexpr size_t kPrefetchBlocks = 8;

// Chunk c of tiles [t, t + kTiles): sums = (first ? 0 : sums) + their dot products.
template <int kTiles>
inline void chunk_step(const TernaryView& w, size_t c, size_t t, const uint8_t* chunk_tables, bool first,
                       int32_t* sums) {
  const uint8_t* blocks[kTiles];
  for (int i = 0; i < kTiles; ++i) blocks[i] = w.block(c, t + i);
  TileSums s[kTiles];
  chunk_tiles<kTiles>(blocks, blocks[0] + kPrefetchBlocks * kBlockBytes, chunk_tables, s);
  for (int i = 0; i < kTiles; ++i) {
    __m512i rows[4];
    tile_rows(s[i], rows);
    int32_t* dst = sums + (t + i) * kRowTile;
    for (int j = 0; j < 4; ++j) {
      __m512i v = rows[j];
      if (!first) v = _mm512_add_epi32(v, _mm512_load_si512(dst + 16 * j));
      _mm512_store_si512(dst + 16 * j, v);
    }
  }
}

void ternary_gemv_chunks(const TernaryView& w, const uint8_t* tables, size_t c0, size_t c1, int32_t* sums,
                         bool accumulate) {
  const size_t tiles = w.row_tiles();
  for (size_t c = c0; c < c1; ++c) {
    // Chunk c's blocks lie one after another, and chunk c + 1's follow them.
    const uint8_t* chunk_tables = tables + c * kChunkTableBytes;
    const bool first = c == c0 && !accumulate;
    size_t t = 0;
    for (; t + kTilesPerStep <= tiles; t += kTilesPerStep)
      chunk_step<kTilesPerStep>(w, c, t, chunk_tables, first, sums);
    switch (tiles - t) {
      case 3: chunk_step<3>(w, c, t, chunk_tables, first, sums); break;
      case 2: chunk_step<2>(w, c, t, chunk_tables, first, sums); break;
      case 1: chunk_step<1>(w, c, t, chunk_tables, first, sums); break;
      default: break;
    }
  }
}

// ---------------------------------------------------------------- GEMM

// Stores (float)sums * scale for the logical rows of a 64-row tile starting at row0.
inline void store_tile(const __m512i rows[4], float scale, size_t row0, size_t n_rows, float* y) {
  const __m512 s = _mm512_set1_ps(scale);
  for (size_t j = 0; j < 4; ++j) {
    const size_t r = row0 + 16 * j;
    if (r >= n_rows) break;
    const __mmask16 m = n_rows - r >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << (n_rows - r)) - 1);
    _mm512_mask_storeu_ps(y + r, m, _mm512_mul_ps(_mm512_cvtepi32_ps(rows[j]), s));
  }
}

constexpr size_t kKStep = 4;                                   // columns per vpdpbusd lane
constexpr size_t kStepsPerChunk = kChunkCols / kKStep;         // 32
constexpr size_t kRowGroups = kRowTile / 16;                   // int32 lanes per zmm
constexpr size_t kExpandedChunkBytes = kChunkCols * kRowTile;  // 8 KB of int8

// Expands one tile (all chunks) to int8 w + 1 in {0, 1, 2}, laid out per
// 4-column step s and 16-row group r: 64 bytes = 16 rows x 4 columns at
// ((chunk * 32 + s) * 4 + r) * 64, the operand order vpdpbusd wants.
void expand_tile(const TernaryView& w, size_t tile, uint8_t* out) {
  alignas(64) static const struct Patterns {
    uint8_t replicate[kRowGroups][64];  // byte l picks row 16r + l / 4
    uint8_t bit[2][64];                 // byte l tests column 4h + l % 4 of the group
    Patterns() {
      for (size_t r = 0; r < kRowGroups; ++r)
        for (size_t l = 0; l < 64; ++l) replicate[r][l] = static_cast<uint8_t>(16 * r + l / 4);
      for (size_t h = 0; h < 2; ++h)
        for (size_t l = 0; l < 64; ++l) bit[h][l] = static_cast<uint8_t>(1u << (4 * h + l % 4));
    }
  } pat;
  const __m512i zero = _mm512_setzero_si512(), one = _mm512_set1_epi8(1), two = _mm512_set1_epi8(2);
  const __m512i bit[2] = {_mm512_load_si512(pat.bit[0]), _mm512_load_si512(pat.bit[1])};
  for (size_t c = 0; c < w.chunks(); ++c) {
    const uint8_t* blk = w.block(c, tile);
    uint8_t* dst = out + c * kExpandedChunkBytes;
    for (size_t g = 0; g < kChunkGroups; ++g) {
      const __m512i plus = _mm512_loadu_si512(blk + g * kGroupBytes);
      const __m512i minus = _mm512_loadu_si512(blk + g * kGroupBytes + kPlaneBytes);
      for (size_t r = 0; r < kRowGroups; ++r) {
        const __m512i rep = _mm512_load_si512(pat.replicate[r]);
        const __m512i p = _mm512_permutexvar_epi8(rep, plus), m = _mm512_permutexvar_epi8(rep, minus);
        for (size_t h = 0; h < 2; ++h) {
          __m512i v = _mm512_mask_mov_epi8(one, _mm512_test_epi8_mask(p, bit[h]), two);
          v = _mm512_mask_mov_epi8(v, _mm512_test_epi8_mask(m, bit[h]), zero);
          _mm512_store_si512(dst + ((2 * g + h) * kRowGroups + r) * 64, v);
        }
      }
    }
  }
}

// sum_k q[k] over n bytes (n a multiple of 64).
int32_t sum_bytes(const int8_t* q, size_t n) {
  const __m512i ones = _mm512_set1_epi8(1);
  __m512i acc = _mm512_setzero_si512();
  for (size_t k = 0; k < n; k += 64) acc = _mm512_dpbusd_epi32(acc, ones, _mm512_loadu_si512(q + k));
  return _mm512_reduce_add_epi32(acc);
}

// acc += dot4(w, x) per int32 lane. GCC 12 compiles _mm512_dpbusd_epi32 in a
// register-blocked loop with two register copies per instruction (it does not
// tie the accumulator); the asm keeps the accumulator in place.
inline void dpbusd(__m512i& acc, __m512i w, __m512i x) {
  __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(w), "v"(x));
}

// int32 sums of kTokens tokens (rows of q, already offset to the pass's first
// column) x 64 rows, plus `steps` 4-column steps of one expanded tile. Every
// loop over acc is fully unrolled so that the accumulators stay in registers.
template <int kTokens>
void tokens_times_steps(const uint8_t* expanded, size_t steps, const int8_t* q, size_t q_stride,
                        int32_t* sums) {
  __m512i acc[kTokens * kRowGroups];
#pragma GCC unroll 32
  for (size_t j = 0; j < kTokens * kRowGroups; ++j) acc[j] = _mm512_load_si512(sums + 16 * j);
  for (size_t s = 0; s < steps; ++s) {
    const uint8_t* wk = expanded + s * kRowGroups * 64;
    __m512i wv[kRowGroups];
#pragma GCC unroll 4
    for (size_t r = 0; r < kRowGroups; ++r) wv[r] = _mm512_load_si512(wk + 64 * r);
#pragma GCC unroll 8
    for (int t = 0; t < kTokens; ++t) {
      int32_t q4;
      __builtin_memcpy(&q4, q + t * q_stride + s * kKStep, 4);
      const __m512i x = _mm512_set1_epi32(q4);
#pragma GCC unroll 4
      for (size_t r = 0; r < kRowGroups; ++r)
        dpbusd(acc[t * kRowGroups + r], wv[r], x);
    }
  }
#pragma GCC unroll 32
  for (size_t j = 0; j < kTokens * kRowGroups; ++j) _mm512_store_si512(sums + 16 * j, acc[j]);
}

// 4 tokens x 4 row groups = 16 accumulators, leaving registers for the weights.
constexpr int kTokenBlock = 4;
// Chunks per pass over all tokens: their expanded weights (16 KB) stay in L1
// while every token block reads them.
constexpr size_t kChunksPerPass = 2;

void ternary_gemm_tiles(const TernaryView& w, const int8_t* q, size_t q_stride, size_t m,
                        const float* out_scale, float* y, size_t y_stride, size_t t0, size_t t1) {
  const GemmScratch scratch = gemm_scratch<64>(w, q, q_stride, m, kExpandedChunkBytes,
                                                [](const int8_t* p, size_t n) { return sum_bytes(p, n); });
  const size_t chunks = w.chunks();
  uint8_t* buf = scratch.expanded;
  int32_t* sums = scratch.sums;
  const int32_t* qsum = scratch.qsum;
  for (size_t tile = t0; tile < t1; ++tile) {
    expand_tile(w, tile, buf);
    std::fill(sums, sums + m * kRowTile, 0);
    for (size_t c = 0; c < chunks; c += kChunksPerPass) {
      const size_t steps = std::min(kChunksPerPass, chunks - c) * kStepsPerChunk;
      const uint8_t* wk = buf + c * kExpandedChunkBytes;
      const int8_t* qc = q + c * kChunkCols;
      for_token_blocks<kTokenBlock>(m, [&](auto tokens, size_t i) {
        tokens_times_steps<decltype(tokens)::value>(wk, steps, qc + i * q_stride, q_stride, sums + i * kRowTile);
      });
    }
    for (size_t i = 0; i < m; ++i) {
      const __m512i bias = _mm512_set1_epi32(qsum[i]);
      __m512i rows[kRowGroups];
      for (size_t r = 0; r < kRowGroups; ++r)
        rows[r] = _mm512_sub_epi32(_mm512_load_si512(sums + i * kRowTile + 16 * r), bias);
      store_tile(rows, out_scale[i], tile * kRowTile, w.rows, y + i * y_stride);
    }
  }
}

}  // namespace

void fill_avx512_ternary(KernelTable& k) {
  k.ternary_table_bytes_per_chunk = kChunkTableBytes;
  k.ternary_gemv_prepare = ternary_gemv_prepare;
  k.ternary_gemv_chunks = ternary_gemv_chunks;
  k.ternary_gemm_tiles = ternary_gemm_tiles;
}

}  // namespace bitnet
