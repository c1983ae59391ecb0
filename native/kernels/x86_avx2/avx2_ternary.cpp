// AVX2 ternary kernels. docs/kernels.md explains the designs and their speeds.
//
// GEMV: each plane byte splits into two nibbles (columns 0-3 and 4-7 of a
// group); each nibble indexes a 16-entry table of partial sums of the 4
// matching activations, looked up for 32 rows at once with vpshufb. To keep
// every table entry in one byte, each activation is split as q = 16 qh + ql
// (ql in [0, 15], qh in [-8, 7]) with separate tables for ql and qh sums; the
// plus-minus differences of both stay within int8 ([-120, 120]) and one
// vpmaddubsw per 16 rows forms dl + 16 dh in int16. Sums stay int16 within a
// chunk (exact: |sum| <= 128 * 128) and are widened to int32 per chunk.
//
// GEMM: one tile is expanded to int8 w + 1 in {0, 1, 2} (the unsigned operand
// of vpmaddubsw; a pair sum is at most 2 * 2 * 128), multiplied against every
// token, and sum_k q[k] is subtracted per token at the end.
#include <immintrin.h>

#include <algorithm>

#include "../gemv_walk.h"
#include "../stream_prefetch.h"
#include "avx2.h"
#include "tile_gemm.h"

namespace bitnet {

namespace {

// One group's tables, 16 int8 entries each: sums of ql over the low nibble's
// columns (0-3), of ql over the high nibble's (4-7), then the same for qh.
constexpr size_t kGroupTableBytes = 64;
constexpr size_t kChunkTableBytes = kChunkGroups * kGroupTableBytes;  // 1 KB

// ---------------------------------------------------------------- GEMV tables

// Returns the 16 int16 sums {sum_{j: bit j of i} v[j]} for i < 16.
inline __m256i nibble_sums(const int16_t v[4]) {
  const __m256i lane = _mm256_setr_epi16(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  __m256i s = _mm256_setzero_si256();
  for (int j = 0; j < 4; ++j) {
    const __m256i bit = _mm256_set1_epi16(static_cast<short>(1 << j));
    const __m256i has = _mm256_cmpeq_epi16(_mm256_and_si256(lane, bit), bit);
    s = _mm256_add_epi16(s, _mm256_and_si256(has, _mm256_set1_epi16(v[j])));
  }
  return s;
}

// Two vectors of 16 int16 (each in [-128, 127]) -> their 32 bytes, a then b.
inline __m256i pack_tables(__m256i a, __m256i b) {
  return _mm256_permute4x64_epi64(_mm256_packs_epi16(a, b), _MM_SHUFFLE(3, 1, 2, 0));
}

void ternary_gemv_prepare(const int8_t* q, size_t c0, size_t c1, uint8_t* tables) {
  for (size_t c = c0; c < c1; ++c) {
    for (size_t g = 0; g < kChunkGroups; ++g) {
      const int8_t* qg = q + c * kChunkCols + g * kGroupCols;
      int16_t low[8], high[8];
      for (size_t i = 0; i < kGroupCols; ++i) {
        low[i] = static_cast<int16_t>(qg[i] & 15);
        high[i] = static_cast<int16_t>(qg[i] >> 4);  // arithmetic shift: q = 16 * high + low
      }
      uint8_t* out = tables + c * kChunkTableBytes + g * kGroupTableBytes;
      _mm256_store_si256(reinterpret_cast<__m256i*>(out), pack_tables(nibble_sums(low), nibble_sums(low + 4)));
      _mm256_store_si256(reinterpret_cast<__m256i*>(out + 32),
                         pack_tables(nibble_sums(high), nibble_sums(high + 4)));
    }
  }
}

// ---------------------------------------------------------------- GEMV tiles

struct GroupTable {
  __m256i low_lo, low_hi, high_lo, high_hi;  // {ql, qh} sums x {low, high nibble}, in both lanes
  explicit GroupTable(const uint8_t* t)
      : low_lo(_mm256_broadcastsi128_si256(_mm_load_si128(reinterpret_cast<const __m128i*>(t)))),
        low_hi(_mm256_broadcastsi128_si256(_mm_load_si128(reinterpret_cast<const __m128i*>(t + 16)))),
        high_lo(_mm256_broadcastsi128_si256(_mm_load_si128(reinterpret_cast<const __m128i*>(t + 32)))),
        high_hi(_mm256_broadcastsi128_si256(_mm_load_si128(reinterpret_cast<const __m128i*>(t + 48)))) {}
};

// int16 sums of 32 rows in unpack order: a holds rows {0-7, 16-23}, b rows {8-15, 24-31}.
struct HalfSums {
  __m256i a, b;
};

// ql and qh sums (int8) of the columns whose bits are set, for the 32 rows of one plane half.
struct PlaneSums {
  __m256i low, high;
};
inline PlaneSums plane_sums(const GroupTable& t, const uint8_t* plane) {
  const __m256i nib = _mm256_set1_epi8(0x0F);
  const __m256i p = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(plane));
  const __m256i lo = _mm256_and_si256(p, nib), hi = _mm256_and_si256(_mm256_srli_epi16(p, 4), nib);
  return {_mm256_add_epi8(_mm256_shuffle_epi8(t.low_lo, lo), _mm256_shuffle_epi8(t.low_hi, hi)),
          _mm256_add_epi8(_mm256_shuffle_epi8(t.high_lo, lo), _mm256_shuffle_epi8(t.high_hi, hi))};
}

// sums += T[plus byte] - T[minus byte] for the 32 rows of one plane half.
inline void accumulate_half(const GroupTable& t, const uint8_t* plus, const uint8_t* minus, HalfSums& s) {
  const __m256i one_sixteen = _mm256_set1_epi16(0x1001);  // bytes 1, 16: dl + 16 dh
  const PlaneSums p = plane_sums(t, plus), m = plane_sums(t, minus);
  const __m256i dl = _mm256_sub_epi8(p.low, m.low), dh = _mm256_sub_epi8(p.high, m.high);
  s.a = _mm256_add_epi16(s.a, _mm256_maddubs_epi16(one_sixteen, _mm256_unpacklo_epi8(dl, dh)));
  s.b = _mm256_add_epi16(s.b, _mm256_maddubs_epi16(one_sixteen, _mm256_unpackhi_epi8(dl, dh)));
}

// The tile's 64 int32 sums, in row order, += one block's
// (one tile, one chunk) dot products. Tile by tile, the sweep reads a quad's
// interleaved groups out of memory order, so each tile prefetches ahead of
// `stream`, its 2 KB share of the chunk's bytes in memory order: the
// prefetches still run forward through memory (stream_prefetch.h; non-temporal
// 3 blocks ahead was 4-10 % faster from DRAM than prefetcht0 8 blocks ahead
// here too, docs/kernels.md).
inline void accumulate_block(const BlockPlanes& blk, const uint8_t* stream, const uint8_t* chunk_tables, int32_t* acc) {
  HalfSums s[2];
  for (auto& h : s) h.a = h.b = _mm256_setzero_si256();
  for (size_t g = 0; g < kChunkGroups; ++g) {
    prefetch_stream<kGroupBytes>(stream + g * kGroupBytes);
    const GroupTable t(chunk_tables + g * kGroupTableBytes);
    const uint8_t* planes = blk.group(g);
    for (size_t h = 0; h < 2; ++h) accumulate_half(t, planes + 32 * h, planes + kPlaneBytes + 32 * h, s[h]);
  }
  for (size_t h = 0; h < 2; ++h) {
    // Widened, a's and b's 128-bit halves are rows 0-7, 8-15, 16-23, 24-31 of the half.
    const __m256i rows[4] = {
        _mm256_cvtepi16_epi32(_mm256_castsi256_si128(s[h].a)),
        _mm256_cvtepi16_epi32(_mm256_castsi256_si128(s[h].b)),
        _mm256_cvtepi16_epi32(_mm256_extracti128_si256(s[h].a, 1)),
        _mm256_cvtepi16_epi32(_mm256_extracti128_si256(s[h].b, 1)),
    };
    for (size_t j = 0; j < 4; ++j) {
      __m256i* dst = reinterpret_cast<__m256i*>(acc + 32 * h + 8 * j);
      _mm256_store_si256(dst, _mm256_add_epi32(_mm256_load_si256(dst), rows[j]));
    }
  }
}

// Chunk c of the quad of tiles starting at tile t.
void quad_sums(const TernaryView& w, const uint8_t* tables, size_t c, size_t t, int32_t* sums) {
  const uint8_t* chunk = w.quad(c, 0);
  for (size_t i = t; i < t + w.quad_tiles(t); ++i)
    accumulate_block(w.block(c, i), chunk + i * kBlockBytes, tables + c * kChunkTableBytes, sums + i * kRowTile);
}

using Avx2Gemv = QuadGemv<ternary_gemv_prepare, quad_sums>;

// ---------------------------------------------------------------- GEMM

// Stores (float)sums * scale for the logical rows of a 64-row tile starting at row0.
inline void store_tile(const int32_t* sums, float scale, size_t row0, size_t n_rows, float* y) {
  const size_t n = std::min(kRowTile, n_rows - row0);
  const __m256 s = _mm256_set1_ps(scale);
  size_t r = 0;
  for (; r + 8 <= n; r += 8) {
    const __m256i v = _mm256_load_si256(reinterpret_cast<const __m256i*>(sums + r));
    _mm256_storeu_ps(y + row0 + r, _mm256_mul_ps(_mm256_cvtepi32_ps(v), s));
  }
  for (; r < n; ++r) y[row0 + r] = static_cast<float>(sums[r]) * scale;
}

constexpr size_t kKStep = 4;                                   // columns per int32 lane
constexpr size_t kStepsPerChunk = kChunkCols / kKStep;         // 32
constexpr size_t kRowVecs = kRowTile / 8;                      // ymm of 8 rows x 4 columns
constexpr size_t kStepBytes = kRowTile * kKStep;               // 256
constexpr size_t kExpandedChunkBytes = kChunkCols * kRowTile;  // 8 KB

// Expands one tile (all chunks) to int8 w + 1, laid out per 4-column step s and
// 8-row group r: 32 bytes = 8 rows x 4 columns at (chunk * 32 + s) * 256 + r * 32.
void expand_tile(const TernaryView& w, size_t tile, uint8_t* out) {
  alignas(32) static const struct Patterns {
    uint8_t replicate[2][32];  // byte l picks row 8r + l / 4 of a 16-row slice (r = 0, 1)
    uint8_t bit[2][32];        // byte l tests column 4h + l % 4 of the group
    Patterns() {
      for (size_t r = 0; r < 2; ++r)
        for (size_t l = 0; l < 32; ++l) replicate[r][l] = static_cast<uint8_t>(8 * r + l / 4);
      for (size_t h = 0; h < 2; ++h)
        for (size_t l = 0; l < 32; ++l) bit[h][l] = static_cast<uint8_t>(1u << (4 * h + l % 4));
    }
  } pat;
  const __m256i one = _mm256_set1_epi8(1);
  for (size_t c = 0; c < w.chunks(); ++c) {
    const BlockPlanes blk = w.block(c, tile);
    uint8_t* dst = out + c * kExpandedChunkBytes;
    for (size_t g = 0; g < kChunkGroups; ++g) {
      for (size_t r = 0; r < kRowVecs; ++r) {
        const size_t slice = 16 * (r / 2);
        const __m256i rep = _mm256_load_si256(reinterpret_cast<const __m256i*>(pat.replicate[r % 2]));
        const auto rows = [&](size_t plane) {
          const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk.group(g) + plane + slice));
          return _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(v), rep);
        };
        const __m256i plus = rows(0), minus = rows(kPlaneBytes);
        for (size_t h = 0; h < 2; ++h) {
          const __m256i bit = _mm256_load_si256(reinterpret_cast<const __m256i*>(pat.bit[h]));
          const __m256i p = _mm256_cmpeq_epi8(_mm256_and_si256(plus, bit), bit);
          const __m256i m = _mm256_cmpeq_epi8(_mm256_and_si256(minus, bit), bit);
          _mm256_store_si256(reinterpret_cast<__m256i*>(dst + (2 * g + h) * kStepBytes + 32 * r),
                             _mm256_add_epi8(_mm256_sub_epi8(one, p), m));
        }
      }
    }
  }
}

// sum_k q[k] over n bytes (n a multiple of 32).
int32_t sum_bytes(const int8_t* q, size_t n) {
  const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
  __m256i acc = _mm256_setzero_si256();
  for (size_t k = 0; k < n; k += 32) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + k));
    acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, v), ones16));
  }
  alignas(32) int32_t lanes[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), acc);
  int32_t s = 0;
  for (int32_t v : lanes) s += v;
  return s;
}

// sums (int32, 64 per token) += kTokens tokens x one expanded chunk. Within the
// chunk the vpmaddubsw pair sums accumulate in int16, exact because a chunk's
// sum_k (w + 1) q lies in [2 * 128 * -128, 2 * 128 * 127] = [-32768, 32512];
// one vpmaddwd per chunk widens them.
template <int kTokens>
void tokens_times_chunk(const uint8_t* expanded, const int8_t* q, size_t q_stride, int32_t* sums) {
  const __m256i ones16 = _mm256_set1_epi16(1);
  for (size_t rv = 0; rv < kRowVecs; rv += 2) {
    __m256i acc[kTokens][2];
    for (auto& t : acc) t[0] = t[1] = _mm256_setzero_si256();
    for (size_t s = 0; s < kStepsPerChunk; ++s) {
      const uint8_t* wk = expanded + s * kStepBytes + 32 * rv;
      const __m256i w0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(wk));
      const __m256i w1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(wk + 32));
      for (int t = 0; t < kTokens; ++t) {
        int32_t q4;
        __builtin_memcpy(&q4, q + t * q_stride + s * kKStep, 4);
        const __m256i x = _mm256_set1_epi32(q4);
        acc[t][0] = _mm256_add_epi16(acc[t][0], _mm256_maddubs_epi16(w0, x));
        acc[t][1] = _mm256_add_epi16(acc[t][1], _mm256_maddubs_epi16(w1, x));
      }
    }
    for (int t = 0; t < kTokens; ++t) {
      for (size_t h = 0; h < 2; ++h) {
        __m256i* dst = reinterpret_cast<__m256i*>(sums + t * kRowTile + 8 * (rv + h));
        _mm256_store_si256(dst, _mm256_add_epi32(_mm256_load_si256(dst), _mm256_madd_epi16(acc[t][h], ones16)));
      }
    }
  }
}

constexpr int kTokenBlock = 4;  // 4 tokens x 2 row vectors = 8 accumulators of 16 registers

void ternary_gemm_tiles(const TernaryView& w, const int8_t* q, size_t q_stride, size_t m,
                        const float* out_scale, float* y, size_t y_stride, size_t t0, size_t t1) {
  const GemmScratch scratch = gemm_scratch<32>(w, q, q_stride, m, kExpandedChunkBytes,
                                                [](const int8_t* p, size_t n) { return sum_bytes(p, n); });
  const size_t chunks = w.chunks();
  uint8_t* buf = scratch.expanded;
  int32_t* sums = scratch.sums;
  const int32_t* qsum = scratch.qsum;
  for (size_t tile = t0; tile < t1; ++tile) {
    expand_tile(w, tile, buf);
    std::fill(sums, sums + m * kRowTile, 0);
    // One chunk (8 KB expanded) per pass over all tokens, so the weights stay in L1.
    for (size_t c = 0; c < chunks; ++c) {
      const uint8_t* wk = buf + c * kExpandedChunkBytes;
      const int8_t* qc = q + c * kChunkCols;
      for_token_blocks<kTokenBlock>(m, [&](auto tokens, size_t i) {
        tokens_times_chunk<decltype(tokens)::value>(wk, qc + i * q_stride, q_stride, sums + i * kRowTile);
      });
    }
    for (size_t i = 0; i < m; ++i) {
      int32_t* row_sums = sums + i * kRowTile;
      for (size_t r = 0; r < kRowTile; ++r) row_sums[r] -= qsum[i];
      store_tile(row_sums, out_scale[i], tile * kRowTile, w.rows, y + i * y_stride);
    }
  }
}

}  // namespace

void fill_avx2_ternary(KernelTable& k) {
  k.ternary_table_bytes_per_chunk = kChunkTableBytes;
  k.ternary_gemv_prepare = ternary_gemv_prepare;
  k.ternary_gemv_steps = Avx2Gemv::steps;
  k.ternary_gemv_build_steps = Avx2Gemv::build_steps;
  k.ternary_gemm_tiles = ternary_gemm_tiles;
}

}  // namespace bitnet
