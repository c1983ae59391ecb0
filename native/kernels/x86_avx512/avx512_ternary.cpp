// AVX-512 ternary kernels (needs BW, VBMI, VNNI). docs/kernels.md explains the
// designs and their measured speeds.
//
// GEMV: a plane byte holds 8 weights of one row. Each activation is split as
// q = 16 qh + ql (ql in [0, 15], qh in [-8, 7]) so that a sum of up to 8 of
// either part fits a byte. The byte's bits 0-6 index 128-entry byte tables of
// ql sums and qh sums (vpermi2b: 64 rows at once; it ignores bit 7), column 7
// is added under the byte's top-bit mask, and the plus-minus differences dl,
// dh (in [-120, 120]) become dl + 16 dh per row with one vpmaddubsw. Sums stay
// int16 within a 128-column chunk (exact: |sum| <= 128 * 128) and are widened
// to int32 per chunk. A chunk's tiles are read quad by quad, group by group:
// in memory order (ternary_format.h).
//
// GEMM: one tile's blocks are expanded to int8 (w + 1, so the unsigned operand
// of vpdpbusd), then every token is multiplied against them; the +1 adds
// sum_k q[k] per token, which is subtracted at the end.

#include <algorithm>

#include "avx512.h"
#include "avx512_intrinsics.h"
#include "../gemv_walk.h"
#include "../stream_prefetch.h"
#include "../x86_avx2/tile_gemm.h"

namespace bitnet {

namespace {

// A group's tables: 128-entry tables of ql sums ([0, 105]) and of qh sums
// ([-56, 49]) over columns 0-6 (bit i of the index = column i), then column
// 7's ql and qh, each in all 64 bytes of a vector.
constexpr size_t kTableBytes = 128;
constexpr size_t kGroupTableBytes = 2 * kTableBytes + 2 * 64;
constexpr size_t kChunkTableBytes = kChunkGroups * kGroupTableBytes;  // 6 KB: stays in L1

// ---------------------------------------------------------------- GEMV tables

// Byte i of every 8-byte lane of v, in all 64 bytes (v repeats one 8-byte lane).
inline __m512i broadcast_byte(__m512i v, int i) {
  return _mm512_shuffle_epi8(v, _mm512_set1_epi8(static_cast<char>(i)));
}

// Builds one group's tables from 8 activations.
inline void build_group_table(const int8_t* q, uint8_t* out) {
  // Bit j of kColumnBit[i] is bit i of j: the entries of the first 64 that include column i.
  static const __mmask64 kColumnBit[6] = {0xAAAAAAAAAAAAAAAAull, 0xCCCCCCCCCCCCCCCCull, 0xF0F0F0F0F0F0F0F0ull,
                                          0xFF00FF00FF00FF00ull, 0xFFFF0000FFFF0000ull, 0xFFFFFFFF00000000ull};
  int64_t q8;
  __builtin_memcpy(&q8, q, 8);
  const __m512i v = _mm512_set1_epi64(q8), nibble = _mm512_set1_epi8(15);
  const __m512i ql = _mm512_and_si512(v, nibble);
  // (q + 128) >> 4 = qh + 8, per byte.
  const __m512i qh = _mm512_sub_epi8(
      _mm512_and_si512(_mm512_srli_epi16(_mm512_xor_si512(v, _mm512_set1_epi8(-128)), 4), nibble),
      _mm512_set1_epi8(8));
  __m512i lo = _mm512_setzero_si512(), hi = _mm512_setzero_si512();
  for (int i = 0; i < 6; ++i) {
    lo = _mm512_mask_add_epi8(lo, kColumnBit[i], lo, broadcast_byte(ql, i));
    hi = _mm512_mask_add_epi8(hi, kColumnBit[i], hi, broadcast_byte(qh, i));
  }
  _mm512_store_si512(out, lo);
  _mm512_store_si512(out + 64, _mm512_add_epi8(lo, broadcast_byte(ql, 6)));
  _mm512_store_si512(out + 128, hi);
  _mm512_store_si512(out + 192, _mm512_add_epi8(hi, broadcast_byte(qh, 6)));
  _mm512_store_si512(out + 256, broadcast_byte(ql, 7));
  _mm512_store_si512(out + 320, broadcast_byte(qh, 7));
}

void ternary_gemv_prepare(const int8_t* q, size_t c0, size_t c1, uint8_t* tables) {
  for (size_t c = c0; c < c1; ++c)
    for (size_t g = 0; g < kChunkGroups; ++g)
      build_group_table(q + c * kChunkCols + g * kGroupCols,
                        tables + c * kChunkTableBytes + g * kGroupTableBytes);
}

// ---------------------------------------------------------------- GEMV tiles

// One group's tables in registers.
struct GroupTable {
  __m512i lo[2], hi[2], lo7, hi7;
  explicit GroupTable(const uint8_t* t)
      : lo{_mm512_load_si512(t), _mm512_load_si512(t + 64)},
        hi{_mm512_load_si512(t + 128), _mm512_load_si512(t + 192)},
        lo7(_mm512_load_si512(t + 256)),
        hi7(_mm512_load_si512(t + 320)) {}
};

// int16 sums of one tile in unpack order: a holds rows 16L+0..7 of each 128-bit
// lane L, b rows 16L+8..15.
struct TileSums {
  __m512i a, b;
};

// sums += sum over the group's 8 columns of (bit0 - bit1) * q for the 64 rows of one tile.
inline void accumulate_group(const GroupTable& t, const uint8_t* planes, __m512i weights, TileSums& s) {
  const __m512i plus = _mm512_loadu_si512(planes), minus = _mm512_loadu_si512(planes + kPlaneBytes);
  const __mmask64 plus7 = _mm512_movepi8_mask(plus), minus7 = _mm512_movepi8_mask(minus);
  // Byte arithmetic wraps, and the final differences lie in [-120, 120].
  __m512i dl = _mm512_sub_epi8(_mm512_permutex2var_epi8(t.lo[0], plus, t.lo[1]),
                               _mm512_permutex2var_epi8(t.lo[0], minus, t.lo[1]));
  __m512i dh = _mm512_sub_epi8(_mm512_permutex2var_epi8(t.hi[0], plus, t.hi[1]),
                               _mm512_permutex2var_epi8(t.hi[0], minus, t.hi[1]));
  // Column 7: the planes' top bits.
  dl = _mm512_mask_add_epi8(dl, plus7, dl, t.lo7);
  dl = _mm512_mask_sub_epi8(dl, minus7, dl, t.lo7);
  dh = _mm512_mask_add_epi8(dh, plus7, dh, t.hi7);
  dh = _mm512_mask_sub_epi8(dh, minus7, dh, t.hi7);
  // (dl, dh) byte pairs; vpmaddubsw with (1, 16) gives dl + 16 dh per row.
  s.a = _mm512_add_epi16(s.a, _mm512_maddubs_epi16(weights, _mm512_unpacklo_epi8(dl, dh)));
  s.b = _mm512_add_epi16(s.b, _mm512_maddubs_epi16(weights, _mm512_unpackhi_epi8(dl, dh)));
}

// Sums of one chunk for the kTiles tiles of one quad (starting at `quad`),
// read group by group, i.e. in memory order, prefetching ahead of that order
// (stream_prefetch.h) once per group step of all kTiles tiles: one page test
// per step, not one per tile. With a test per tile, the speed from DRAM
// depended on where the linker put this code: 1 thread, 2560x2560, 37-40 us
// per call at half of 16 placements 256 bytes apart and 50-60 us at the
// others; with one test per step, 37-41 us at 30 of 32 placements
// (docs/kernels.md, stop 16).
template <int kTiles>
inline void quad_sums(const uint8_t* quad, const uint8_t* chunk_tables, TileSums* s) {
  const __m512i weights = _mm512_set1_epi16(16 << 8 | 1);
  for (int i = 0; i < kTiles; ++i) s[i].a = s[i].b = _mm512_setzero_si512();
  for (size_t g = 0; g < kChunkGroups; ++g) {
    const GroupTable t(chunk_tables + g * kGroupTableBytes);
    const uint8_t* planes = quad + g * kTiles * kGroupBytes;
    prefetch_stream<kTiles * kGroupBytes>(planes);
    for (int i = 0; i < kTiles; ++i) accumulate_group(t, planes + i * kGroupBytes, weights, s[i]);
  }
}

// vpermt2w indices (0-31: a lane of TileSums::a, 32-63: of b) that gather,
// for h = 0 and 1, rows 32h..32h+15 into the even int16 lanes and rows
// 32h+16..32h+31 into the odd ones. a's lane l holds row 16(l/8) + l%8, b's
// lane l row 16(l/8) + 8 + l%8 (the unpack order).
struct RowPairIndex {
  alignas(64) uint16_t lanes[2][32] = {};
  constexpr RowPairIndex() {
    for (size_t h = 0; h < 2; ++h)
      for (size_t i = 0; i < 32; ++i) {
        const size_t row = 32 * h + (i % 2) * 16 + i / 2, block = row / 16, k = row % 16;
        lanes[h][i] = static_cast<uint16_t>(k < 8 ? 8 * block + k : 32 + 8 * block + k - 8);
      }
  }
};
constexpr RowPairIndex kRowPairs;

// Chunk c of the kTiles tiles of the quad starting at tile t: sums += their
// dot products, in row order. Widening: one word permute per 32 rows pairs each
// row's int16 sum with another's, and vpdpwssd with word weights (1, 0) or
// (0, 1) adds one of the pair to an int32 row sum (measured: 5-10 % faster
// from DRAM at 2 threads than widening with vpmovsxwd and restoring row order
// with vshufi64x2).
template <int kTiles>
inline void quad_step(const TernaryView& w, size_t c, size_t t, const uint8_t* chunk_tables, int32_t* sums) {
  const __m512i even = _mm512_set1_epi32(1), odd = _mm512_set1_epi32(1 << 16);
  TileSums s[kTiles];
  quad_sums<kTiles>(w.quad(c, t), chunk_tables, s);
  for (int i = 0; i < kTiles; ++i) {
    int32_t* dst = sums + (t + i) * kRowTile;
    for (size_t h = 0; h < 2; ++h) {
      const __m512i pair = _mm512_permutex2var_epi16(s[i].a, _mm512_load_si512(kRowPairs.lanes[h]), s[i].b);
      int32_t* low = dst + 32 * h;
      int32_t* high = low + 16;
      _mm512_store_si512(low, _mm512_dpwssd_epi32(_mm512_load_si512(low), pair, even));
      _mm512_store_si512(high, _mm512_dpwssd_epi32(_mm512_load_si512(high), pair, odd));
    }
  }
}

// Chunk c of the quad of tiles starting at tile t.
void quad_dots(const TernaryView& w, const uint8_t* tables, size_t c, size_t t, int32_t* sums) {
  static_assert(kQuadTiles == 4, "with_count_1_to_4 covers every quad size");
  with_count_1_to_4(w.quad_tiles(t), [&](auto n) {
    quad_step<decltype(n)::value>(w, c, t, tables + c * kChunkTableBytes, sums);
  });
}

// The first chunk's tables first, then chunk c + 1's a few groups after each
// step of chunk c: the build never holds up the weight stream for a whole
// chunk (against building each chunk's tables right before its first step:
// 0-3 points of the read bandwidth faster at 2 threads from DRAM,
// docs/kernels.md stop 15).
void ternary_gemv_build_steps(const TernaryView& w, const int8_t* q, size_t begin, GemvWalk& walk, uint8_t* tables,
                              int32_t* sums) {
  const size_t quads = w.quads();
  const size_t groups_per_quad = (kChunkGroups + quads - 1) / quads;
  const auto build_groups = [&](size_t c, size_t g0, size_t g1) {
    for (size_t g = g0; g < g1; ++g)
      build_group_table(q + c * kChunkCols + g * kGroupCols, tables + c * kChunkTableBytes + g * kGroupTableBytes);
  };
  size_t building = begin / quads, built = 0;  // the chunk whose tables are being built, and its groups built
  for_each_step(w, begin, walk, [&](size_t c, size_t t) {
    if (c == building) {  // a walk that starts late in a chunk leaves the next one partly built
      build_groups(c, built, kChunkGroups);
      ++building;
      built = 0;
    }
    quad_dots(w, tables, c, t, sums);
    if (building <= (walk.end - 1) / quads) {
      const size_t end = std::min(kChunkGroups, built + groups_per_quad);
      build_groups(building, built, end);
      built = end;
    }
  });
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
    const BlockPlanes blk = w.block(c, tile);
    uint8_t* dst = out + c * kExpandedChunkBytes;
    for (size_t g = 0; g < kChunkGroups; ++g) {
      const __m512i plus = _mm512_loadu_si512(blk.group(g));
      const __m512i minus = _mm512_loadu_si512(blk.group(g) + kPlaneBytes);
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
  k.ternary_gemv_steps = QuadGemv<ternary_gemv_prepare, quad_dots>::steps;
  k.ternary_gemv_build_steps = ternary_gemv_build_steps;
  k.ternary_gemm_tiles = ternary_gemm_tiles;
}

}  // namespace bitnet
