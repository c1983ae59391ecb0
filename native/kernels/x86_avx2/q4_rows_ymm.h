// The 4-bit LM head's row loop on 256-bit registers (kernel_table.h matvec_q4),
// shared by the AVX2 and AVX-512 tables. A 64-byte block holds columns
// [0, 64) of its 128 in the low nibbles and [64, 128) in the high nibbles, so
// one 32-byte load covers 32 columns of each half. Dot::madd(acc, u, s) adds
// the products of unsigned bytes u and signed bytes s to the int32 lanes of
// acc, four neighbouring bytes per lane, exactly.
//
// Each table's file is compiled with its own target flags, so nothing here is
// an ordinary inline function (the linker would keep one copy for both): the
// template is only instantiated with a Dot type local to each file, which
// gives every instantiation internal linkage.
#pragma once
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "../stream_prefetch.h"

namespace bitnet {

template <class Dot>
void matvec_q4_rows_ymm(const uint8_t* w, size_t cols_padded, const int8_t* q, const float* row_scale,
                        float x_inv_scale, float* y, size_t r0, size_t r1) {
  const auto load = [](const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); };
  const auto hsum = [](__m256i v) {
    const __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    const __m128i s2 = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    return static_cast<uint32_t>(_mm_cvtsi128_si32(_mm_add_epi32(s2, _mm_shuffle_epi32(s2, 0xB1))));
  };
  const __m256i low = _mm256_set1_epi8(0x0F);
  // The nibbles are weight + 8: every row sum carries 8 * sum(q), computed
  // once per call and subtracted per row; exact whenever the true sum fits in
  // int32 (as the scalar kernel requires).
  __m256i q_sum = _mm256_setzero_si256();
  for (size_t c = 0; c < cols_padded; c += 32) q_sum = Dot::madd(q_sum, _mm256_set1_epi8(1), load(q + c));
  const uint32_t bias = 8u * hsum(q_sum);
  const size_t row_bytes = cols_padded / 2;
  for (size_t r = r0; r < r1; ++r) {
    const uint8_t* row = w + r * row_bytes;
    __m256i acc[4];
    for (auto& a : acc) a = _mm256_setzero_si256();
    for (size_t b = 0; b < row_bytes; b += 64) {
      prefetch_stream<64>(row + b);
      const int8_t* qb = q + 2 * b;
      for (size_t h = 0; h < 2; ++h) {
        const __m256i packed = load(row + b + 32 * h);
        acc[2 * h] = Dot::madd(acc[2 * h], _mm256_and_si256(packed, low), load(qb + 32 * h));
        acc[2 * h + 1] = Dot::madd(acc[2 * h + 1], _mm256_and_si256(_mm256_srli_epi16(packed, 4), low),
                                   load(qb + 64 + 32 * h));
      }
    }
    const __m256i sum = _mm256_add_epi32(_mm256_add_epi32(acc[0], acc[1]), _mm256_add_epi32(acc[2], acc[3]));
    y[r] = static_cast<float>(static_cast<int32_t>(hsum(sum) - bias)) * row_scale[r] * x_inv_scale;
  }
}

}  // namespace bitnet
