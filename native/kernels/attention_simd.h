// Grouped-query attention written once for every SIMD table. The query heads
// that share a KV head are computed together, so each cached K and V row is
// read and converted from f16 once per group instead of once per query head.
//
// Besides what simd_math.h asks of its traits struct S, these need:
//   kLanes (floats per F), zero(), loadu(const float*), storeu(float*, F),
//   load_f16(const f16_t*) (kLanes halves to floats), reduce_add(F) and
//   reduce_max(F). Tails shorter than a vector are done in scalar code.
//
// Every head's result is the same sequence of operations whichever heads it
// is computed with, so ops.cpp may split a group across threads freely.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>

#include "kernel_table.h"
#include "simd_math.h"
#include "stream_prefetch.h"

namespace bitnet {
namespace simd {

// Accumulators a pass keeps in flight (heads x positions, or heads x vectors):
// enough independent FMA chains to cover the FMA latency, few enough to stay
// in registers on AVX2's sixteen.
constexpr size_t kAttendAccumulators = 8;

// Cached positions read ahead with a non-temporal prefetch. In decode the
// cache of a layer comes from DRAM (a whole step's weights streamed through
// since), and a pass computes too much per row for the out-of-order window
// to keep enough rows in flight: from DRAM, one layer at 512 positions ran
// 1.9x faster on one thread with 16 rows ahead, and 64 rows beat 16 and 32
// by another 10-20 % while 128 gained nothing (docs/kernels.md).
// Addresses past the last position are never dereferenced: prefetches do not fault.
constexpr size_t kAttendPrefetchRows = 64;

// Prefetches `bytes` (a multiple of 64, or less than 64) from p on, p being
// kAttendPrefetchRows rows ahead of a walk that advances `step` bytes; and the
// page 16 KB further on when this step starts it (stream_prefetch.h).
inline void prefetch_rows(const f16_t* p, size_t bytes, size_t step) {
  const uint8_t* c = reinterpret_cast<const uint8_t*>(p);
  for (size_t b = 0; b < bytes; b += 64) __builtin_prefetch(c + b, 0, 0);
  prefetch_page_ahead(c, step);
}

// scores[h * t_len + t] = scale * q_h . K_t for kHeads heads.
template <class S, size_t kHeads>
void group_scores(const float* q, const f16_t* k, size_t kv_stride, size_t t_len, size_t head_dim, float scale,
                  float* scores) {
  constexpr size_t kPositions = kAttendAccumulators / kHeads;
  using F = typename S::F;
  for (size_t t0 = 0; t0 < t_len; t0 += kPositions) {
    const size_t positions = std::min(kPositions, t_len - t0);
    F acc[kPositions][kHeads];
    for (auto& row : acc)
      for (F& a : row) a = S::zero();
    for (size_t j = 0; j < positions; ++j)
      prefetch_rows(k + (t0 + j + kAttendPrefetchRows) * kv_stride, head_dim * sizeof(f16_t), kv_stride * sizeof(f16_t));
    size_t d = 0;
    for (; d + S::kLanes <= head_dim; d += S::kLanes) {
      for (size_t j = 0; j < positions; ++j) {
        const F key = S::load_f16(k + (t0 + j) * kv_stride + d);
        for (size_t h = 0; h < kHeads; ++h) acc[j][h] = S::fmadd(S::loadu(q + h * head_dim + d), key, acc[j][h]);
      }
    }
    for (size_t j = 0; j < positions; ++j) {
      const f16_t* key = k + (t0 + j) * kv_stride;
      for (size_t h = 0; h < kHeads; ++h) {
        float s = S::reduce_add(acc[j][h]);
        for (size_t e = d; e < head_dim; ++e) s += q[h * head_dim + e] * f16_to_f32_scalar(key[e]);
        scores[h * t_len + t0 + j] = s * scale;
      }
    }
  }
}

// s[0, n) = softmax(s).
template <class S>
void softmax_in_place(float* s, size_t n) {
  using F = typename S::F;
  F mx = S::set1(-INFINITY);
  size_t t = 0;
  for (; t + S::kLanes <= n; t += S::kLanes) mx = S::max(mx, S::loadu(s + t));
  float max_score = S::reduce_max(mx);
  for (; t < n; ++t) max_score = std::max(max_score, s[t]);
  const F minus_max = S::set1(-max_score);
  F sum_v = S::zero();
  for (t = 0; t + S::kLanes <= n; t += S::kLanes) {
    const F e = exp<S>(S::add(S::loadu(s + t), minus_max));
    S::storeu(s + t, e);
    sum_v = S::add(sum_v, e);
  }
  float sum = S::reduce_add(sum_v);
  for (; t < n; ++t) {
    s[t] = std::exp(s[t] - max_score);
    sum += s[t];
  }
  const F inv = S::set1(1.f / sum);
  for (t = 0; t + S::kLanes <= n; t += S::kLanes) S::storeu(s + t, S::mul(S::loadu(s + t), inv));
  for (; t < n; ++t) s[t] *= 1.f / sum;
}

// out_h = sum_t p[h * t_len + t] V_t for kHeads heads.
template <class S, size_t kHeads>
void group_values(const float* p, const f16_t* v, size_t kv_stride, size_t t_len, size_t head_dim, float* out) {
  constexpr size_t kVecs = kAttendAccumulators / kHeads;
  using F = typename S::F;
  size_t d0 = 0;
  while (d0 + S::kLanes <= head_dim) {
    const size_t vecs = std::min(kVecs, (head_dim - d0) / S::kLanes);
    F acc[kHeads][kVecs];
    for (auto& row : acc)
      for (F& a : row) a = S::zero();
    for (size_t t = 0; t < t_len; ++t) {
      prefetch_rows(v + (t + kAttendPrefetchRows) * kv_stride + d0, vecs * S::kLanes * sizeof(f16_t),
                    kv_stride * sizeof(f16_t));
      F value[kVecs];
      for (size_t i = 0; i < vecs; ++i) value[i] = S::load_f16(v + t * kv_stride + d0 + i * S::kLanes);
      for (size_t h = 0; h < kHeads; ++h) {
        const F weight = S::set1(p[h * t_len + t]);
        for (size_t i = 0; i < vecs; ++i) acc[h][i] = S::fmadd(weight, value[i], acc[h][i]);
      }
    }
    for (size_t h = 0; h < kHeads; ++h)
      for (size_t i = 0; i < vecs; ++i) S::storeu(out + h * head_dim + d0 + i * S::kLanes, acc[h][i]);
    d0 += vecs * S::kLanes;
  }
  for (size_t d = d0; d < head_dim; ++d) {
    for (size_t h = 0; h < kHeads; ++h) {
      float acc = 0.f;
      for (size_t t = 0; t < t_len; ++t) acc += p[h * t_len + t] * f16_to_f32_scalar(v[t * kv_stride + d]);
      out[h * head_dim + d] = acc;
    }
  }
}

template <class S, size_t kHeads>
void attend_heads(const float* q, const f16_t* k, const f16_t* v, size_t kv_stride, size_t t_len,
                  size_t head_dim, float scale, float* scores, float* out) {
  group_scores<S, kHeads>(q, k, kv_stride, t_len, head_dim, scale, scores);
  for (size_t h = 0; h < kHeads; ++h) softmax_in_place<S>(scores + h * t_len, t_len);
  group_values<S, kHeads>(scores, v, kv_stride, t_len, head_dim, out);
}

// KernelTable::attend: the group's heads four, two, then one at a time.
template <class S>
void attend_group(const float* q, size_t group, const f16_t* k, const f16_t* v, size_t kv_stride, size_t t_len,
                  size_t head_dim, float scale, float* scores, float* out) {
  size_t h = 0;
  for (; h + 4 <= group; h += 4)
    attend_heads<S, 4>(q + h * head_dim, k, v, kv_stride, t_len, head_dim, scale, scores + h * t_len, out + h * head_dim);
  for (; h + 2 <= group; h += 2)
    attend_heads<S, 2>(q + h * head_dim, k, v, kv_stride, t_len, head_dim, scale, scores + h * t_len, out + h * head_dim);
  for (; h < group; ++h)
    attend_heads<S, 1>(q + h * head_dim, k, v, kv_stride, t_len, head_dim, scale, scores + h * t_len, out + h * head_dim);
}

}  // namespace simd
}  // namespace bitnet
