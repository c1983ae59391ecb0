// NEON (AArch64 Advanced SIMD + dot product) float kernels: quantization,
// norms, attention, FFN gates, f16 conversion and the LM head. Loops take 4
// or 8 floats per step; what is left over goes to the scalar table's entry
// where one exists (identical results by construction) and to a scalar loop
// otherwise. Every output row or head is computed on its own, so no result
// depends on how ops.cpp slices the work.
#include <arm_neon.h>

#include <algorithm>
#include <cmath>

#include "../attention_simd.h"
#include "../simd_math.h"
#include "neon.h"

namespace bitnet {
namespace {

inline float32x4_t load_f16(const f16_t* p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }

struct NeonMath {
  using F = float32x4_t;
  using I = int32x4_t;
  static constexpr size_t kLanes = 4;
  static F zero() { return vdupq_n_f32(0.f); }
  static F loadu(const float* p) { return vld1q_f32(p); }
  static void storeu(float* p, F v) { vst1q_f32(p, v); }
  static F load_f16(const f16_t* p) { return bitnet::load_f16(p); }
  static float reduce_add(F v) { return vaddvq_f32(v); }
  static float reduce_max(F v) { return vmaxvq_f32(v); }
  static F set1(float v) { return vdupq_n_f32(v); }
  static F add(F a, F b) { return vaddq_f32(a, b); }
  static F mul(F a, F b) { return vmulq_f32(a, b); }
  static F div(F a, F b) { return vdivq_f32(a, b); }
  static F fmadd(F a, F b, F c) { return vfmaq_f32(c, a, b); }
  static F min(F a, F b) { return vminq_f32(a, b); }
  static F max(F a, F b) { return vmaxq_f32(a, b); }
  static F round_nearest(F a) { return vrndnq_f32(a); }
  static I to_int(F a) { return vcvtq_s32_f32(a); }
  static I half(I k) { return vshrq_n_s32(k, 1); }
  static I sub(I a, I b) { return vsubq_s32(a, b); }
  static F pow2(I k) { return vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(k, vdupq_n_s32(127)), 23)); }
};

constexpr size_t kLanes = NeonMath::kLanes;

const KernelTable& scalar() { return scalar_kernels(); }

float absmax(const float* x, size_t n) {
  float32x4_t m = vdupq_n_f32(0.f);
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) m = vmaxq_f32(m, vabsq_f32(vld1q_f32(x + i)));
  return std::max(vmaxvq_f32(m), scalar().absmax(x + i, n - i));
}

void quantize_i8(const float* x, size_t n, float scale, int8_t* q) {
  const float32x4_t s = vdupq_n_f32(scale);
  size_t i = 0;
  for (; i + 2 * kLanes <= n; i += 2 * kLanes) {
    // vcvtnq rounds half to even and saturates; the narrowing saturates to int8.
    const int32x4_t a = vcvtnq_s32_f32(vmulq_f32(vld1q_f32(x + i), s));
    const int32x4_t b = vcvtnq_s32_f32(vmulq_f32(vld1q_f32(x + i + kLanes), s));
    vst1_s8(q + i, vqmovn_s16(vcombine_s16(vqmovn_s32(a), vqmovn_s32(b))));
  }
  scalar().quantize_i8(x + i, n - i, scale, q + i);
}

void rmsnorm(const float* x, const float* g, size_t n, float eps, float* y) {
  float32x4_t acc = vdupq_n_f32(0.f);
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    const float32x4_t v = vld1q_f32(x + i);
    acc = vfmaq_f32(acc, v, v);
  }
  float ss = vaddvq_f32(acc);
  for (size_t j = i; j < n; ++j) ss += x[j] * x[j];
  const float inv = 1.f / std::sqrt(ss / static_cast<float>(n) + eps);
  for (i = 0; i + kLanes <= n; i += kLanes)
    vst1q_f32(y + i, vmulq_f32(vmulq_n_f32(vld1q_f32(x + i), inv), vld1q_f32(g + i)));
  for (; i < n; ++i) y[i] = x[i] * inv * g[i];
}

void rope(float* v, size_t n_heads, size_t head_dim, const float* cos_half, const float* sin_half) {
  const size_t half = head_dim / 2;
  for (size_t h = 0; h < n_heads; ++h) {
    float* x = v + h * head_dim;
    size_t j = 0;
    for (; j + kLanes <= half; j += kLanes) {
      const float32x4_t a = vld1q_f32(x + j), b = vld1q_f32(x + j + half);
      const float32x4_t c = vld1q_f32(cos_half + j), s = vld1q_f32(sin_half + j);
      vst1q_f32(x + j, vfmsq_f32(vmulq_f32(a, c), b, s));
      vst1q_f32(x + j + half, vfmaq_f32(vmulq_f32(a, s), b, c));
    }
    for (; j < half; ++j) {
      const float a = x[j], b = x[j + half];
      x[j] = a * cos_half[j] - b * sin_half[j];
      x[j + half] = b * cos_half[j] + a * sin_half[j];
    }
  }
}

void relu2_gate(const float* gate, const float* up, size_t n, float* out) {
  const float32x4_t zero = vdupq_n_f32(0.f);
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    // Select on g > 0 rather than vmaxq, which would pass NaN through.
    const float32x4_t g = vld1q_f32(gate + i);
    const float32x4_t r = vbslq_f32(vcgtq_f32(g, zero), g, zero);
    vst1q_f32(out + i, vmulq_f32(vmulq_f32(r, r), vld1q_f32(up + i)));
  }
  scalar().relu2_gate(gate + i, up + i, n - i, out + i);
}

void silu_gate(const float* gate, const float* up, size_t n, float* out) {
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    vst1q_f32(out + i, simd::silu_gate<NeonMath>(vld1q_f32(gate + i), vld1q_f32(up + i)));
  scalar().silu_gate(gate + i, up + i, n - i, out + i);
}

void add_inplace(float* y, const float* x, size_t n) {
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) vst1q_f32(y + i, vaddq_f32(vld1q_f32(y + i), vld1q_f32(x + i)));
  scalar().add_inplace(y + i, x + i, n - i);
}

// FCVT quiets signalling NaNs; the scalar conversion keeps the f16 quiet bit
// as it is, so NaN lanes take bit 22 from the input.
void f16_to_f32(const f16_t* x, size_t n, float* y) {
  const uint32x4_t quiet = vdupq_n_u32(0x400000);
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    const uint16x4_t h = vld1_u16(x + i);
    const float32x4_t f = vcvt_f32_f16(vreinterpret_f16_u16(h));
    const uint32x4_t bits = vreinterpretq_u32_f32(f);
    const uint32x4_t from_input = vandq_u32(vshlq_n_u32(vmovl_u16(h), 13), quiet);
    const uint32x4_t fixed = vorrq_u32(vbicq_u32(bits, quiet), from_input);
    const uint32x4_t nan = vmvnq_u32(vceqq_f32(f, f));
    vst1q_f32(y + i, vreinterpretq_f32_u32(vbslq_u32(nan, fixed, bits)));
  }
  scalar().f16_to_f32(x + i, n - i, y + i);
}

// FCVT keeps NaN payloads; the scalar conversion writes sign | 0x7E00.
void f32_to_f16(const float* x, size_t n, f16_t* y) {
  const uint16x4_t sign = vdup_n_u16(0x8000), qnan = vdup_n_u16(0x7E00);
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    const float32x4_t f = vld1q_f32(x + i);
    const uint16x4_t h = vreinterpret_u16_f16(vcvt_f16_f32(f));
    const uint16x4_t nan = vmovn_u32(vmvnq_u32(vceqq_f32(f, f)));
    vst1_u16(y + i, vbsl_u16(nan, vorr_u16(vand_u16(h, sign), qnan), h));
  }
  scalar().f32_to_f16(x + i, n - i, y + i);
}

// The LM head kernels walk one row at a time: a row is one sequential
// stream, which hardware prefetchers follow at full memory bandwidth
// (interleaving several rows measured 2-3x slower on an x86 dev machine),
// and x or q stay in L1 anyway.

void matvec_f16(const f16_t* w, size_t cols, const float* x, float* y, size_t r0, size_t r1) {
  for (size_t r = r0; r < r1; ++r) {
    const f16_t* row = w + r * cols;
    float32x4_t acc[4];
    for (auto& a : acc) a = vdupq_n_f32(0.f);
    size_t c = 0;
    for (; c + 4 * kLanes <= cols; c += 4 * kLanes) {
      for (size_t u = 0; u < 4; u += 2) {
        const float16x8_t h = vreinterpretq_f16_u16(vld1q_u16(row + c + u * kLanes));
        acc[u] = vfmaq_f32(acc[u], vcvt_f32_f16(vget_low_f16(h)), vld1q_f32(x + c + u * kLanes));
        acc[u + 1] = vfmaq_f32(acc[u + 1], vcvt_high_f32_f16(h), vld1q_f32(x + c + (u + 1) * kLanes));
      }
    }
    for (; c + kLanes <= cols; c += kLanes) acc[0] = vfmaq_f32(acc[0], load_f16(row + c), vld1q_f32(x + c));
    float sum = vaddvq_f32(vaddq_f32(vaddq_f32(acc[0], acc[1]), vaddq_f32(acc[2], acc[3])));
    for (; c < cols; ++c) sum += f16_to_f32_scalar(row[c]) * x[c];
    y[r] = sum;
  }
}

// sdot multiplies signed bytes exactly into int32 lanes.
void matvec_i8(const int8_t* w, size_t cols_padded, const int8_t* q, const float* row_scale,
               float x_inv_scale, float* y, size_t r0, size_t r1) {
  for (size_t r = r0; r < r1; ++r) {
    const int8_t* row = w + r * cols_padded;
    int32x4_t acc[4];
    for (auto& a : acc) a = vdupq_n_s32(0);
    for (size_t c = 0; c < cols_padded; c += 64)
      for (size_t u = 0; u < 4; ++u) acc[u] = vdotq_s32(acc[u], vld1q_s8(row + c + 16 * u), vld1q_s8(q + c + 16 * u));
    const int32x4_t sum = vaddq_s32(vaddq_s32(acc[0], acc[1]), vaddq_s32(acc[2], acc[3]));
    y[r] = static_cast<float>(vaddvq_s32(sum)) * row_scale[r] * x_inv_scale;
  }
}

}  // namespace

void fill_neon_float(KernelTable& k) {
  k.absmax = absmax;
  k.quantize_i8 = quantize_i8;
  k.rmsnorm = rmsnorm;
  k.rope = rope;
  k.attend = simd::attend_group<NeonMath>;
  k.relu2_gate = relu2_gate;
  k.silu_gate = silu_gate;
  k.add_inplace = add_inplace;
  k.f16_to_f32 = f16_to_f32;
  k.f32_to_f16 = f32_to_f16;
  k.matvec_f16 = matvec_f16;
  k.matvec_i8 = matvec_i8;
}

}  // namespace bitnet
