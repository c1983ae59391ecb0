// AVX2 kernel of the 4-bit LM head (kernel_table.h matvec_q4). One 32-byte
// load covers 32 columns of a block's first half (low nibbles) and the 32
// columns 64 further on (high nibbles).
#include <immintrin.h>

#include "avx2.h"

namespace bitnet {
namespace {

inline __m256i load(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// vpmaddubsw multiplies the unsigned nibbles (weight + 8) by signed q: a pair
// sums to at most 2 * 15 * 128, far from int16 saturation; vpmaddwd widens to
// int32. Every row sum carries 8 * sum(q), computed once per call and
// subtracted per row; exact whenever the true sum fits in int32.
void matvec_q4(const uint8_t* w, size_t cols_padded, const int8_t* q, const float* row_scale,
               float x_inv_scale, float* y, size_t r0, size_t r1) {
  const __m256i ones16 = _mm256_set1_epi16(1), low = _mm256_set1_epi8(0x0F);
  __m256i q_sum = _mm256_setzero_si256();
  for (size_t c = 0; c < cols_padded; c += 32)
    q_sum = _mm256_add_epi32(q_sum, _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), load(q + c)), ones16));
  const auto hsum = [](__m256i v) {
    const __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    const __m128i s2 = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    return static_cast<uint32_t>(_mm_cvtsi128_si32(_mm_add_epi32(s2, _mm_shuffle_epi32(s2, 0xB1))));
  };
  const uint32_t bias = 8u * hsum(q_sum);
  const size_t row_bytes = cols_padded / 2;
  for (size_t r = r0; r < r1; ++r) {
    const uint8_t* row = w + r * row_bytes;
    __m256i acc0 = _mm256_setzero_si256(), acc1 = _mm256_setzero_si256();
    for (size_t b = 0; b < row_bytes; b += 64) {
      const int8_t* qb = q + 2 * b;
      for (size_t h = 0; h < 64; h += 32) {
        const __m256i packed = load(row + b + h);
        const __m256i lo = _mm256_maddubs_epi16(_mm256_and_si256(packed, low), load(qb + h));
        const __m256i hi = _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(packed, 4), low), load(qb + 64 + h));
        acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(lo, ones16));
        acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(hi, ones16));
      }
    }
    y[r] = static_cast<float>(static_cast<int32_t>(hsum(_mm256_add_epi32(acc0, acc1)) - bias)) * row_scale[r] *
           x_inv_scale;
  }
}

}  // namespace

void fill_avx2_lm_head(KernelTable& k) { k.matvec_q4 = matvec_q4; }

}  // namespace bitnet
