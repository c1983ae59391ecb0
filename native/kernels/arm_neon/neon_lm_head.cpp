// NEON (dotprod) kernel of the 4-bit LM head (kernel_table.h matvec_q4). One
// 16-byte load covers 16 columns of a block's first half (low nibbles) and
// the 16 columns 64 further on (high nibbles).
#include <arm_neon.h>

#include "neon.h"

namespace bitnet {
namespace {

// sdot multiplies the nibbles (weight + 8, 0..15, valid as signed bytes) by q
// exactly into int32 lanes; every row sum carries 8 * sum(q), subtracted per row.
void matvec_q4(const uint8_t* w, size_t cols_padded, const int8_t* q, const float* row_scale,
               float x_inv_scale, float* y, size_t r0, size_t r1) {
  const int8x16_t ones = vdupq_n_s8(1);
  int32x4_t q_sum = vdupq_n_s32(0);
  for (size_t c = 0; c < cols_padded; c += 16) q_sum = vdotq_s32(q_sum, ones, vld1q_s8(q + c));
  const uint32_t bias = 8u * static_cast<uint32_t>(vaddvq_s32(q_sum));
  const uint8x16_t low = vdupq_n_u8(0x0F);
  const size_t row_bytes = cols_padded / 2;
  for (size_t r = r0; r < r1; ++r) {
    const uint8_t* row = w + r * row_bytes;
    int32x4_t acc[4];
    for (auto& a : acc) a = vdupq_n_s32(0);
    for (size_t b = 0; b < row_bytes; b += 64) {
      const int8_t* qb = q + 2 * b;
      for (size_t u = 0; u < 4; ++u) {
        const uint8x16_t packed = vld1q_u8(row + b + 16 * u);
        acc[u] = vdotq_s32(acc[u], vreinterpretq_s8_u8(vandq_u8(packed, low)), vld1q_s8(qb + 16 * u));
        acc[u] = vdotq_s32(acc[u], vreinterpretq_s8_u8(vshrq_n_u8(packed, 4)), vld1q_s8(qb + 64 + 16 * u));
      }
    }
    const int32x4_t sum = vaddq_s32(vaddq_s32(acc[0], acc[1]), vaddq_s32(acc[2], acc[3]));
    const uint32_t biased = static_cast<uint32_t>(vaddvq_s32(sum));
    y[r] = static_cast<float>(static_cast<int32_t>(biased - bias)) * row_scale[r] * x_inv_scale;
  }
}

}  // namespace

void fill_neon_lm_head(KernelTable& k) { k.matvec_q4 = matvec_q4; }

}  // namespace bitnet
