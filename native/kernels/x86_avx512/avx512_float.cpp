// AVX-512 float kernels: quantization, norms, attention, FFN gates, f16
// conversion and the LM head. Loops take 16 floats per step and finish with
// one masked step, so every length runs without a scalar tail. Every output
// row or head is computed on its own, so no result depends on how ops.cpp
// slices the work.

#include <cmath>

#include "../attention_simd.h"
#include "../simd_math.h"
#include "avx512.h"
#include "../stream_prefetch.h"
#include "avx512_intrinsics.h"

namespace bitnet {
namespace {

struct Avx512Math {
  using F = __m512;
  using I = __m512i;
  static constexpr size_t kLanes = 16;
  static F zero() { return _mm512_setzero_ps(); }
  static F loadu(const float* p) { return _mm512_loadu_ps(p); }
  static void storeu(float* p, F v) { _mm512_storeu_ps(p, v); }
  static F load_f16(const f16_t* p) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
  static float reduce_add(F v) { return _mm512_reduce_add_ps(v); }
  static float reduce_max(F v) { return _mm512_reduce_max_ps(v); }
  static F set1(float v) { return _mm512_set1_ps(v); }
  static F add(F a, F b) { return _mm512_add_ps(a, b); }
  static F mul(F a, F b) { return _mm512_mul_ps(a, b); }
  static F div(F a, F b) { return _mm512_div_ps(a, b); }
  static F fmadd(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
  static F min(F a, F b) { return _mm512_min_ps(a, b); }
  static F max(F a, F b) { return _mm512_max_ps(a, b); }
  static F round_nearest(F a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static I to_int(F a) { return _mm512_cvtps_epi32(a); }
  static I half(I k) { return _mm512_srai_epi32(k, 1); }
  static I sub(I a, I b) { return _mm512_sub_epi32(a, b); }
  static F pow2(I k) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(k, _mm512_set1_epi32(127)), 23)); }
};

constexpr size_t kLanes = Avx512Math::kLanes;

// Lanes [0, min(remaining, 16)) set.
inline __mmask16 lanes(size_t remaining) {
  return remaining >= kLanes ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << remaining) - 1);
}

inline __m512 load(const float* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
inline __m512 load_f16(const f16_t* p, __mmask16 m) { return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p)); }

float absmax(const float* x, size_t n) {
  __m512 m = _mm512_setzero_ps();
  for (size_t i = 0; i < n; i += kLanes) m = _mm512_max_ps(m, _mm512_abs_ps(load(x + i, lanes(n - i))));
  return _mm512_reduce_max_ps(m);
}

void quantize_i8(const float* x, size_t n, float scale, int8_t* q) {
  const __m512 s = _mm512_set1_ps(scale), lo = _mm512_set1_ps(-128.f), hi = _mm512_set1_ps(127.f);
  for (size_t i = 0; i < n; i += kLanes) {
    const __mmask16 m = lanes(n - i);
    // Clamping before rounding equals clamping after (the bounds are integers)
    // and keeps out-of-range values away from cvtps's 0x80000000 result.
    const __m512 v = _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(load(x + i, m), s), lo), hi);
    _mm_mask_storeu_epi8(q + i, m, _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(v)));
  }
}

void rmsnorm(const float* x, const float* g, size_t n, float eps, float* y) {
  __m512 ss = _mm512_setzero_ps();
  for (size_t i = 0; i < n; i += kLanes) {
    const __m512 v = load(x + i, lanes(n - i));
    ss = _mm512_fmadd_ps(v, v, ss);
  }
  const __m512 inv = _mm512_set1_ps(1.f / std::sqrt(_mm512_reduce_add_ps(ss) / static_cast<float>(n) + eps));
  for (size_t i = 0; i < n; i += kLanes) {
    const __mmask16 m = lanes(n - i);
    _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(_mm512_mul_ps(load(x + i, m), inv), load(g + i, m)));
  }
}

void rope(float* v, size_t n_heads, size_t head_dim, const float* cos_half, const float* sin_half) {
  const size_t half = head_dim / 2;
  for (size_t h = 0; h < n_heads; ++h) {
    float* x = v + h * head_dim;
    for (size_t j = 0; j < half; j += kLanes) {
      const __mmask16 m = lanes(half - j);
      const __m512 a = load(x + j, m), b = load(x + j + half, m);
      const __m512 c = load(cos_half + j, m), s = load(sin_half + j, m);
      _mm512_mask_storeu_ps(x + j, m, _mm512_fmsub_ps(a, c, _mm512_mul_ps(b, s)));
      _mm512_mask_storeu_ps(x + j + half, m, _mm512_fmadd_ps(b, c, _mm512_mul_ps(a, s)));
    }
  }
}

void relu2_gate(const float* gate, const float* up, size_t n, float* out) {
  for (size_t i = 0; i < n; i += kLanes) {
    const __mmask16 m = lanes(n - i);
    // max_ps(g, 0) is g only when g > 0 (0 for NaN and -0), like the scalar kernel.
    const __m512 r = _mm512_max_ps(load(gate + i, m), _mm512_setzero_ps());
    _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(_mm512_mul_ps(r, r), load(up + i, m)));
  }
}

void silu_gate(const float* gate, const float* up, size_t n, float* out) {
  for (size_t i = 0; i < n; i += kLanes) {
    const __mmask16 m = lanes(n - i);
    _mm512_mask_storeu_ps(out + i, m, simd::silu_gate<Avx512Math>(load(gate + i, m), load(up + i, m)));
  }
}

void add_inplace(float* y, const float* x, size_t n) {
  for (size_t i = 0; i < n; i += kLanes) {
    const __mmask16 m = lanes(n - i);
    _mm512_mask_storeu_ps(y + i, m, _mm512_add_ps(load(y + i, m), load(x + i, m)));
  }
}

// F16C quiets signalling NaNs; the scalar conversion keeps the f16 quiet bit
// as it is, so NaN lanes take bit 22 from the input.
void f16_to_f32(const f16_t* x, size_t n, float* y) {
  const __m512i quiet = _mm512_set1_epi32(0x400000);
  for (size_t i = 0; i < n; i += kLanes) {
    const __mmask16 m = lanes(n - i);
    const __m256i h = _mm256_maskz_loadu_epi16(m, x + i);
    const __m512 f = _mm512_cvtph_ps(h);
    const __mmask16 nan = _mm512_cmp_ps_mask(f, f, _CMP_UNORD_Q);
    const __m512i from_input = _mm512_and_si512(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 13), quiet);
    const __m512i fixed = _mm512_or_si512(_mm512_andnot_si512(quiet, _mm512_castps_si512(f)), from_input);
    _mm512_mask_storeu_ps(y + i, m, _mm512_mask_mov_ps(f, nan, _mm512_castsi512_ps(fixed)));
  }
}

// vcvtps2ph keeps NaN payloads; the scalar conversion writes sign | 0x7E00.
void f32_to_f16(const float* x, size_t n, f16_t* y) {
  const __m256i sign = _mm256_set1_epi16(static_cast<short>(0x8000)), qnan = _mm256_set1_epi16(0x7E00);
  for (size_t i = 0; i < n; i += kLanes) {
    const __mmask16 m = lanes(n - i);
    const __m512 f = load(x + i, m);
    const __m256i h = _mm512_cvtps_ph(f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __mmask16 nan = _mm512_cmp_ps_mask(f, f, _CMP_UNORD_Q);
    const __m256i canonical = _mm256_or_si256(_mm256_and_si256(h, sign), qnan);
    _mm256_mask_storeu_epi16(y + i, m, _mm256_mask_blend_epi16(nan, h, canonical));
  }
}

// The LM head kernels walk one row at a time: the rows of a piece are one
// sequential stream, prefetched like the GEMV's (stream_prefetch.h).
// Interleaving 4 or 8 rows measured 2-3x slower from DRAM on the dev machine
// (Zen 4), and x or q stay in L1 anyway.

void matvec_f16(const f16_t* w, size_t cols, const float* x, float* y, size_t r0, size_t r1) {
  for (size_t r = r0; r < r1; ++r) {
    const f16_t* row = w + r * cols;
    __m512 acc[4];
    for (auto& a : acc) a = _mm512_setzero_ps();
    size_t c = 0;
    for (; c + 4 * kLanes <= cols; c += 4 * kLanes) {
      prefetch_stream<4 * kLanes * sizeof(f16_t)>(row + c);
      for (size_t u = 0; u < 4; ++u) {
        const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + c + u * kLanes));
        acc[u] = _mm512_fmadd_ps(_mm512_cvtph_ps(h), _mm512_loadu_ps(x + c + u * kLanes), acc[u]);
      }
    }
    for (; c < cols; c += kLanes) {
      const __mmask16 m = lanes(cols - c);
      acc[0] = _mm512_fmadd_ps(load_f16(row + c, m), load(x + c, m), acc[0]);
    }
    y[r] = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
  }
}

// vpdpbusd multiplies unsigned by signed bytes. Weights w become w ^ 0x80 =
// w + 128 (unsigned), so each row sum carries an extra 128 * sum(q), computed
// once per call and subtracted per row; int32 arithmetic wraps, so the result is exact whenever the
// true sum fits in int32 (as the scalar kernel requires).
void matvec_i8(const int8_t* w, size_t cols_padded, const int8_t* q, const float* row_scale,
               float x_inv_scale, float* y, size_t r0, size_t r1) {
  const __m512i ones = _mm512_set1_epi8(1), flip = _mm512_set1_epi8(static_cast<char>(0x80));
  __m512i q_sum = _mm512_setzero_si512();
  for (size_t c = 0; c < cols_padded; c += 64) q_sum = _mm512_dpbusd_epi32(q_sum, ones, _mm512_loadu_si512(q + c));
  const uint32_t bias = 128u * static_cast<uint32_t>(_mm512_reduce_add_epi32(q_sum));
  for (size_t r = r0; r < r1; ++r) {
    const int8_t* row = w + r * cols_padded;
    __m512i acc0 = _mm512_setzero_si512(), acc1 = _mm512_setzero_si512();
    size_t c = 0;
    for (; c + 128 <= cols_padded; c += 128) {
      prefetch_stream<128>(row + c);
      acc0 = _mm512_dpbusd_epi32(acc0, _mm512_xor_si512(_mm512_loadu_si512(row + c), flip), _mm512_loadu_si512(q + c));
      acc1 = _mm512_dpbusd_epi32(acc1, _mm512_xor_si512(_mm512_loadu_si512(row + c + 64), flip),
                                 _mm512_loadu_si512(q + c + 64));
    }
    if (c < cols_padded)
      acc0 = _mm512_dpbusd_epi32(acc0, _mm512_xor_si512(_mm512_loadu_si512(row + c), flip), _mm512_loadu_si512(q + c));
    const uint32_t biased = static_cast<uint32_t>(_mm512_reduce_add_epi32(_mm512_add_epi32(acc0, acc1)));
    y[r] = static_cast<float>(static_cast<int32_t>(biased - bias)) * row_scale[r] * x_inv_scale;
  }
}

}  // namespace

void fill_avx512_float(KernelTable& k) {
  k.absmax = absmax;
  k.quantize_i8 = quantize_i8;
  k.rmsnorm = rmsnorm;
  k.rope = rope;
  k.attend = simd::attend_group<Avx512Math>;
  k.relu2_gate = relu2_gate;
  k.silu_gate = silu_gate;
  k.add_inplace = add_inplace;
  k.f16_to_f32 = f16_to_f32;
  k.f32_to_f16 = f32_to_f16;
  k.matvec_f16 = matvec_f16;
  k.matvec_i8 = matvec_i8;
}

}  // namespace bitnet
