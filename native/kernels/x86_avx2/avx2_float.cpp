// AVX2/FMA/F16C float kernels: quantization, norms, attention, FFN gates, f16
// conversion and the LM head. Loops take 8 floats per step; what is left
// over goes to the scalar table's entry where one exists (identical results
// by construction) and to a scalar loop otherwise. Every output row or head
// is computed on its own, so no result depends on how ops.cpp slices the work.
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "../attention_simd.h"
#include "../simd_math.h"
#include "../stream_prefetch.h"
#include "avx2.h"

namespace bitnet {
namespace {

inline __m256 load_f16(const f16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

inline float hmax(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_max_ss(s, _mm_movehdup_ps(s)));
}

struct Avx2Math {
  using F = __m256;
  using I = __m256i;
  static constexpr size_t kLanes = 8;
  static F zero() { return _mm256_setzero_ps(); }
  static F loadu(const float* p) { return _mm256_loadu_ps(p); }
  static void storeu(float* p, F v) { _mm256_storeu_ps(p, v); }
  static F load_f16(const f16_t* p) { return bitnet::load_f16(p); }
  static float reduce_add(F v) { return hsum(v); }
  static float reduce_max(F v) { return hmax(v); }
  static F set1(float v) { return _mm256_set1_ps(v); }
  static F add(F a, F b) { return _mm256_add_ps(a, b); }
  static F mul(F a, F b) { return _mm256_mul_ps(a, b); }
  static F div(F a, F b) { return _mm256_div_ps(a, b); }
  static F fmadd(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
  static F min(F a, F b) { return _mm256_min_ps(a, b); }
  static F max(F a, F b) { return _mm256_max_ps(a, b); }
  static F round_nearest(F a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static I to_int(F a) { return _mm256_cvtps_epi32(a); }
  static I half(I k) { return _mm256_srai_epi32(k, 1); }
  static I sub(I a, I b) { return _mm256_sub_epi32(a, b); }
  static F pow2(I k) { return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k, _mm256_set1_epi32(127)), 23)); }
};

constexpr size_t kLanes = Avx2Math::kLanes;

const KernelTable& scalar() { return scalar_kernels(); }

inline __m128i load_i8x16(const int8_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }

inline int32_t hsum_i32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
  return _mm_cvtsi128_si32(_mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1))));
}

float absmax(const float* x, size_t n) {
  const __m256 magnitude = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
  __m256 m = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) m = _mm256_max_ps(m, _mm256_and_ps(_mm256_loadu_ps(x + i), magnitude));
  return std::max(hmax(m), scalar().absmax(x + i, n - i));
}

void quantize_i8(const float* x, size_t n, float scale, int8_t* q) {
  const __m256 s = _mm256_set1_ps(scale), lo = _mm256_set1_ps(-128.f), hi = _mm256_set1_ps(127.f);
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    // Clamping before rounding equals clamping after (the bounds are integers)
    // and keeps out-of-range values away from cvtps's 0x80000000 result.
    const __m256 v = _mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), s), lo), hi);
    const __m256i k = _mm256_cvtps_epi32(v);
    const __m128i k16 = _mm_packs_epi32(_mm256_castsi256_si128(k), _mm256_extracti128_si256(k, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(q + i), _mm_packs_epi16(k16, k16));
  }
  scalar().quantize_i8(x + i, n - i, scale, q + i);
}

void rmsnorm(const float* x, const float* g, size_t n, float eps, float* y) {
  __m256 acc = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    const __m256 v = _mm256_loadu_ps(x + i);
    acc = _mm256_fmadd_ps(v, v, acc);
  }
  float ss = hsum(acc);
  for (size_t j = i; j < n; ++j) ss += x[j] * x[j];
  const float inv = 1.f / std::sqrt(ss / static_cast<float>(n) + eps);
  const __m256 inv_v = _mm256_set1_ps(inv);
  for (i = 0; i + kLanes <= n; i += kLanes)
    _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), inv_v), _mm256_loadu_ps(g + i)));
  for (; i < n; ++i) y[i] = x[i] * inv * g[i];
}

void rope(float* v, size_t n_heads, size_t head_dim, const float* cos_half, const float* sin_half) {
  const size_t half = head_dim / 2;
  for (size_t h = 0; h < n_heads; ++h) {
    float* x = v + h * head_dim;
    size_t j = 0;
    for (; j + kLanes <= half; j += kLanes) {
      const __m256 a = _mm256_loadu_ps(x + j), b = _mm256_loadu_ps(x + j + half);
      const __m256 c = _mm256_loadu_ps(cos_half + j), s = _mm256_loadu_ps(sin_half + j);
      _mm256_storeu_ps(x + j, _mm256_fmsub_ps(a, c, _mm256_mul_ps(b, s)));
      _mm256_storeu_ps(x + j + half, _mm256_fmadd_ps(b, c, _mm256_mul_ps(a, s)));
    }
    for (; j < half; ++j) {
      const float a = x[j], b = x[j + half];
      x[j] = a * cos_half[j] - b * sin_half[j];
      x[j + half] = b * cos_half[j] + a * sin_half[j];
    }
  }
}

void relu2_gate(const float* gate, const float* up, size_t n, float* out) {
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    // max_ps(g, 0) is g only when g > 0 (0 for NaN and -0), like the scalar kernel.
    const __m256 r = _mm256_max_ps(_mm256_loadu_ps(gate + i), _mm256_setzero_ps());
    _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_mul_ps(r, r), _mm256_loadu_ps(up + i)));
  }
  scalar().relu2_gate(gate + i, up + i, n - i, out + i);
}

void silu_gate(const float* gate, const float* up, size_t n, float* out) {
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    _mm256_storeu_ps(out + i, simd::silu_gate<Avx2Math>(_mm256_loadu_ps(gate + i), _mm256_loadu_ps(up + i)));
  scalar().silu_gate(gate + i, up + i, n - i, out + i);
}

void add_inplace(float* y, const float* x, size_t n) {
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(y + i), _mm256_loadu_ps(x + i)));
  scalar().add_inplace(y + i, x + i, n - i);
}

// F16C quiets signalling NaNs; the scalar conversion keeps the f16 quiet bit
// as it is, so NaN lanes take bit 22 from the input.
void f16_to_f32(const f16_t* x, size_t n, float* y) {
  const __m256i quiet = _mm256_set1_epi32(0x400000);
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i));
    const __m256 f = _mm256_cvtph_ps(h);
    const __m256i from_input = _mm256_and_si256(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 13), quiet);
    const __m256i fixed = _mm256_or_si256(_mm256_andnot_si256(quiet, _mm256_castps_si256(f)), from_input);
    _mm256_storeu_ps(y + i, _mm256_blendv_ps(f, _mm256_castsi256_ps(fixed), _mm256_cmp_ps(f, f, _CMP_UNORD_Q)));
  }
  scalar().f16_to_f32(x + i, n - i, y + i);
}

// vcvtps2ph keeps NaN payloads; the scalar conversion writes sign | 0x7E00.
void f32_to_f16(const float* x, size_t n, f16_t* y) {
  const __m128i sign = _mm_set1_epi16(static_cast<short>(0x8000)), qnan = _mm_set1_epi16(0x7E00);
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    const __m256 f = _mm256_loadu_ps(x + i);
    const __m128i h = _mm256_cvtps_ph(f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m256i nan32 = _mm256_castps_si256(_mm256_cmp_ps(f, f, _CMP_UNORD_Q));
    const __m128i nan = _mm_packs_epi32(_mm256_castsi256_si128(nan32), _mm256_extracti128_si256(nan32, 1));
    const __m128i canonical = _mm_or_si128(_mm_and_si128(h, sign), qnan);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i), _mm_blendv_epi8(h, canonical, nan));
  }
  scalar().f32_to_f16(x + i, n - i, y + i);
}

// The LM head kernels walk one row at a time: the rows of a piece are one
// sequential stream, prefetched like the GEMV's (stream_prefetch.h).
// Interleaving 4 or 8 rows measured 2-3x slower from DRAM on the dev machine
// (Zen 4), and x or q stay in L1 anyway.

void matvec_f16(const f16_t* w, size_t cols, const float* x, float* y, size_t r0, size_t r1) {
  for (size_t r = r0; r < r1; ++r) {
    const f16_t* row = w + r * cols;
    __m256 acc[4];
    for (auto& a : acc) a = _mm256_setzero_ps();
    size_t c = 0;
    for (; c + 4 * kLanes <= cols; c += 4 * kLanes) {
      prefetch_stream<4 * kLanes * sizeof(f16_t)>(row + c);
      for (size_t u = 0; u < 4; ++u)
        acc[u] = _mm256_fmadd_ps(load_f16(row + c + u * kLanes), _mm256_loadu_ps(x + c + u * kLanes), acc[u]);
    }
    for (; c + kLanes <= cols; c += kLanes) acc[0] = _mm256_fmadd_ps(load_f16(row + c), _mm256_loadu_ps(x + c), acc[0]);
    float sum = hsum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
    for (; c < cols; ++c) sum += f16_to_f32_scalar(row[c]) * x[c];
    y[r] = sum;
  }
}

// Without VNNI the exact int8 product is vpmaddwd on sign-extended 16-bit
// values: pairs of products of at most 2^14 each fit in int32, where
// vpmaddubsw's int16 pair sums could saturate.
void matvec_i8(const int8_t* w, size_t cols_padded, const int8_t* q, const float* row_scale,
               float x_inv_scale, float* y, size_t r0, size_t r1) {
  for (size_t r = r0; r < r1; ++r) {
    const int8_t* row = w + r * cols_padded;
    __m256i acc0 = _mm256_setzero_si256(), acc1 = _mm256_setzero_si256();
    for (size_t c = 0; c < cols_padded; c += 32) {
      if (c % 64 == 0) prefetch_stream<64>(row + c);
      const __m256i w0 = _mm256_cvtepi8_epi16(load_i8x16(row + c)), w1 = _mm256_cvtepi8_epi16(load_i8x16(row + c + 16));
      acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(w0, _mm256_cvtepi8_epi16(load_i8x16(q + c))));
      acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(w1, _mm256_cvtepi8_epi16(load_i8x16(q + c + 16))));
    }
    y[r] = static_cast<float>(hsum_i32(_mm256_add_epi32(acc0, acc1))) * row_scale[r] * x_inv_scale;
  }
}

}  // namespace

void fill_avx2_float(KernelTable& k) {
  k.absmax = absmax;
  k.quantize_i8 = quantize_i8;
  k.rmsnorm = rmsnorm;
  k.rope = rope;
  k.attend = simd::attend_group<Avx2Math>;
  k.relu2_gate = relu2_gate;
  k.silu_gate = silu_gate;
  k.add_inplace = add_inplace;
  k.f16_to_f32 = f16_to_f32;
  k.f32_to_f16 = f32_to_f16;
  k.matvec_f16 = matvec_f16;
  k.matvec_i8 = matvec_i8;
}

}  // namespace bitnet
