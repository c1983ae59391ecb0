// AVX-512 VNNI kernel of the 4-bit LM head (kernel_table.h matvec_q4), on
// 256-bit registers (AVX512VL vpdpbusd). A 64-byte block holds columns
// [0, 64) of its 128 in the low nibbles and [64, 128) in the high nibbles;
// each 32-byte half is one vpdpbusd per nibble run against q.
//
// Why 256 bits: the head is read cold from DRAM, after the layers' 521 MB.
// There, with one thread on the dev machine, the 2B4T head took 8.8-9.2 ms
// with 64-byte loads into 512-bit vpdpbusd (7.6-7.9 ms with a software
// prefetch 2 KiB ahead; 512-bit vpmaddubsw + vpmaddwd was no better) and
// 5.5-5.8 ms with this loop, three interleaved runs each (/tmp harness
// cycling over 1 GiB of copies). Hot in cache the 512-bit loop was faster
// (5.0 vs 7 ms), which is not how decode reads the head.

// GCC 12's AVX-512 headers trip -Wmaybe-uninitialized (see avx512_float.cpp).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#include "avx512.h"

namespace bitnet {
namespace {

inline __m256i load(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// vpdpbusd multiplies the unsigned nibbles (weight + 8) by signed q; every
// row sum carries 8 * sum(q), computed once per call and subtracted per row.
// Products are at most 15 * 128, so no sum of four saturates, and the int32
// arithmetic is exact whenever the true sum fits (as the scalar kernel requires).
void matvec_q4(const uint8_t* w, size_t cols_padded, const int8_t* q, const float* row_scale,
               float x_inv_scale, float* y, size_t r0, size_t r1) {
  const __m256i ones = _mm256_set1_epi8(1), low = _mm256_set1_epi8(0x0F);
  __m256i q_sum = _mm256_setzero_si256();
  for (size_t c = 0; c < cols_padded; c += 32) q_sum = _mm256_dpbusd_epi32(q_sum, ones, load(q + c));
  const auto hsum = [](__m256i v) {
    const __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    const __m128i s2 = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    return static_cast<uint32_t>(_mm_cvtsi128_si32(_mm_add_epi32(s2, _mm_shuffle_epi32(s2, 0xB1))));
  };
  const uint32_t bias = 8u * hsum(q_sum);
  const size_t row_bytes = cols_padded / 2;
  for (size_t r = r0; r < r1; ++r) {
    const uint8_t* row = w + r * row_bytes;
    __m256i acc[4];
    for (auto& a : acc) a = _mm256_setzero_si256();
    for (size_t b = 0; b < row_bytes; b += 64) {
      const int8_t* qb = q + 2 * b;
      for (size_t h = 0; h < 2; ++h) {
        const __m256i packed = load(row + b + 32 * h);
        acc[2 * h] = _mm256_dpbusd_epi32(acc[2 * h], _mm256_and_si256(packed, low), load(qb + 32 * h));
        acc[2 * h + 1] = _mm256_dpbusd_epi32(acc[2 * h + 1], _mm256_and_si256(_mm256_srli_epi16(packed, 4), low),
                                             load(qb + 64 + 32 * h));
      }
    }
    const __m256i sum = _mm256_add_epi32(_mm256_add_epi32(acc[0], acc[1]), _mm256_add_epi32(acc[2], acc[3]));
    y[r] = static_cast<float>(static_cast<int32_t>(hsum(sum) - bias)) * row_scale[r] * x_inv_scale;
  }
}

}  // namespace

void fill_avx512_lm_head(KernelTable& k) { k.matvec_q4 = matvec_q4; }

}  // namespace bitnet
