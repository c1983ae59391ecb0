// Reference kernels: the definition of "correct" for every SIMD table.
// Written for clarity; each loop mirrors a formula in the BitNet reference.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "../gemv_walk.h"
#include "../kernel_table.h"
#include "../stream_read.h"

namespace bitnet {

float f16_to_f32_scalar(f16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1Fu, mant = h & 0x3FFu, bits;
  if (exp == 0x1F) {
    bits = sign | 0x7F800000u | (mant << 13);
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  } else if (mant == 0) {
    bits = sign;
  } else {  // subnormal: renormalize
    exp = 113;
    while (!(mant & 0x400u)) {
      mant <<= 1;
      --exp;
    }
    bits = sign | (exp << 23) | ((mant & 0x3FFu) << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

f16_t f32_to_f16_scalar(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t abs = x & 0x7FFFFFFFu;
  if (abs >= 0x7F800000u) return static_cast<f16_t>(sign | 0x7C00u | (abs > 0x7F800000u ? 0x200u : 0));
  if (abs >= 0x477FF000u) return static_cast<f16_t>(sign | 0x7C00u);  // rounds to >= 65520: Inf
  if (abs < 0x38800000u) {  // result is subnormal or zero
    if (abs < 0x33000000u) return static_cast<f16_t>(sign);  // below half the smallest subnormal
    const uint32_t e = abs >> 23, m = (abs & 0x7FFFFFu) | 0x800000u;
    const uint32_t shift = 126 - e;  // 14..24 bits to drop
    uint32_t r = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (r & 1))) ++r;
    return static_cast<f16_t>(sign | r);
  }
  uint32_t r = ((abs >> 13) - (112u << 10));
  const uint32_t rem = abs & 0x1FFFu;
  if (rem > 0x1000u || (rem == 0x1000u && (r & 1))) ++r;  // may carry into Inf: correct
  return static_cast<f16_t>(sign | r);
}

namespace {

float absmax(const float* x, size_t n) {
  float m = 0.f;
  for (size_t i = 0; i < n; ++i) m = std::max(m, std::fabs(x[i]));
  return m;
}

void quantize_i8(const float* x, size_t n, float scale, int8_t* q) {
  for (size_t i = 0; i < n; ++i) {
    const float r = std::nearbyint(x[i] * scale);  // default rounding mode: half to even
    q[i] = static_cast<int8_t>(std::min(127.f, std::max(-128.f, r)));
  }
}

// acc[r] += sum_k W[r][k] * q[k] over one block (one tile, one chunk) for every row r of the tile.
void block_dots(const BlockPlanes& blk, const int8_t* q, int32_t* acc) {
  for (size_t g = 0; g < kChunkGroups; ++g) {
    const uint8_t* plus = blk.group(g);
    const uint8_t* minus = plus + kPlaneBytes;
    for (size_t r = 0; r < kRowTile; ++r) {
      for (unsigned i = 0; i < kGroupCols; ++i) {
        const int w = ((plus[r] >> i) & 1) - ((minus[r] >> i) & 1);
        acc[r] += w * q[g * kGroupCols + i];
      }
    }
  }
}

// Chunk c of the quad of tiles starting at tile t.
void quad_dots(const TernaryView& w, const uint8_t* tables, size_t c, size_t t, int32_t* sums) {
  const int8_t* q = reinterpret_cast<const int8_t*>(tables) + c * kChunkCols;
  for (size_t i = t; i < t + w.quad_tiles(t); ++i) block_dots(w.block(c, i), q, sums + i * kRowTile);
}

using ScalarGemv = QuadGemv<copy_activations_as_tables, quad_dots>;

void ternary_gemm_tiles(const TernaryView& w, const int8_t* q, size_t q_stride, size_t m,
                        const float* out_scale, float* y, size_t y_stride, size_t t0, size_t t1) {
  for (size_t i = 0; i < m; ++i) {
    for (size_t t = t0; t < t1; ++t) {
      int32_t acc[kRowTile] = {};
      for (size_t c = 0; c < w.chunks(); ++c) block_dots(w.block(c, t), q + i * q_stride + c * kChunkCols, acc);
      for (size_t r = 0; r < kRowTile && t * kRowTile + r < w.rows; ++r)
        y[i * y_stride + t * kRowTile + r] = static_cast<float>(acc[r]) * out_scale[i];
    }
  }
}

void rmsnorm(const float* x, const float* g, size_t n, float eps, float* y) {
  float ss = 0.f;
  for (size_t i = 0; i < n; ++i) ss += x[i] * x[i];
  const float inv = 1.f / std::sqrt(ss / static_cast<float>(n) + eps);
  for (size_t i = 0; i < n; ++i) y[i] = x[i] * inv * g[i];
}

void rope(float* v, size_t n_heads, size_t head_dim, const float* cos_half, const float* sin_half) {
  const size_t half = head_dim / 2;
  for (size_t h = 0; h < n_heads; ++h) {
    float* x = v + h * head_dim;
    for (size_t j = 0; j < half; ++j) {
      const float a = x[j], b = x[j + half];
      x[j] = a * cos_half[j] - b * sin_half[j];
      x[j + half] = b * cos_half[j] + a * sin_half[j];
    }
  }
}

void attend_one(const float* q, const f16_t* k, const f16_t* v, size_t kv_stride, size_t t_len,
                size_t head_dim, float scale, float* scores, float* out) {
  float mx = -INFINITY;
  for (size_t t = 0; t < t_len; ++t) {
    float s = 0.f;
    for (size_t d = 0; d < head_dim; ++d) s += q[d] * f16_to_f32_scalar(k[t * kv_stride + d]);
    scores[t] = s * scale;
    mx = std::max(mx, scores[t]);
  }
  float sum = 0.f;
  for (size_t t = 0; t < t_len; ++t) {
    scores[t] = std::exp(scores[t] - mx);
    sum += scores[t];
  }
  const float inv = 1.f / sum;
  for (size_t d = 0; d < head_dim; ++d) out[d] = 0.f;
  for (size_t t = 0; t < t_len; ++t) {
    const float p = scores[t] * inv;
    for (size_t d = 0; d < head_dim; ++d) out[d] += p * f16_to_f32_scalar(v[t * kv_stride + d]);
  }
}

void attend(const float* q, size_t group, const f16_t* k, const f16_t* v, size_t kv_stride, size_t t_len,
            size_t head_dim, float scale, float* scores, float* out) {
  for (size_t h = 0; h < group; ++h)
    attend_one(q + h * head_dim, k, v, kv_stride, t_len, head_dim, scale, scores + h * t_len, out + h * head_dim);
}

void relu2_gate(const float* gate, const float* up, size_t n, float* out) {
  for (size_t i = 0; i < n; ++i) {
    const float r = gate[i] > 0.f ? gate[i] : 0.f;
    out[i] = r * r * up[i];
  }
}

void silu_gate(const float* gate, const float* up, size_t n, float* out) {
  for (size_t i = 0; i < n; ++i) out[i] = gate[i] / (1.f + std::exp(-gate[i])) * up[i];
}

void add_inplace(float* y, const float* x, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] += x[i];
}

void f16_to_f32(const f16_t* x, size_t n, float* y) {
  for (size_t i = 0; i < n; ++i) y[i] = f16_to_f32_scalar(x[i]);
}

void f32_to_f16(const float* x, size_t n, f16_t* y) {
  for (size_t i = 0; i < n; ++i) y[i] = f32_to_f16_scalar(x[i]);
}

void matvec_f16(const f16_t* w, size_t cols, const float* x, float* y, size_t r0, size_t r1) {
  for (size_t r = r0; r < r1; ++r) {
    float s = 0.f;
    for (size_t c = 0; c < cols; ++c) s += f16_to_f32_scalar(w[r * cols + c]) * x[c];
    y[r] = s;
  }
}

void matvec_i8(const int8_t* w, size_t cols_padded, const int8_t* q, const float* row_scale,
               float x_inv_scale, float* y, size_t r0, size_t r1) {
  for (size_t r = r0; r < r1; ++r) {
    int32_t s = 0;
    for (size_t c = 0; c < cols_padded; ++c) s += int32_t{w[r * cols_padded + c]} * q[c];
    y[r] = static_cast<float>(s) * row_scale[r] * x_inv_scale;
  }
}

void matvec_q4(const uint8_t* w, size_t cols_padded, const int8_t* q, const float* row_scale,
               float x_inv_scale, float* y, size_t r0, size_t r1) {
  constexpr size_t kHalf = kQ4BlockCols / 2;
  for (size_t r = r0; r < r1; ++r) {
    const uint8_t* row = w + r * (cols_padded / 2);
    int32_t s = 0;
    for (size_t c = 0; c < cols_padded; ++c) {
      const uint8_t byte = row[c / kQ4BlockCols * kHalf + c % kHalf];
      const int nibble = c % kQ4BlockCols < kHalf ? byte & 0xF : byte >> 4;
      s += (nibble - 8) * q[c];
    }
    y[r] = static_cast<float>(s) * row_scale[r] * x_inv_scale;
  }
}

const KernelTable kScalar = {
    "scalar",      absmax,     quantize_i8, kChunkCols, copy_activations_as_tables,
    ScalarGemv::steps,         ScalarGemv::build_steps,
    ternary_gemm_tiles,        rmsnorm,     rope,       attend,
    relu2_gate,    silu_gate,  add_inplace, f16_to_f32, f32_to_f16,
    matvec_f16,    matvec_i8,  matvec_q4,  stream_read_vectors<16>,
};

}  // namespace

const KernelTable& scalar_kernels() { return kScalar; }

void copy_activations_as_tables(const int8_t* q, size_t c0, size_t c1, uint8_t* tables) {
  std::memcpy(tables + c0 * kChunkCols, q + c0 * kChunkCols, (c1 - c0) * kChunkCols);
}

}  // namespace bitnet
