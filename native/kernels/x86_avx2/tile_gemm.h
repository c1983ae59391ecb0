// What the AVX2 and AVX-512 ternary GEMMs share apart from their arithmetic,
// and the count dispatch that the AVX-512 GEMV uses for its quads as well.
// Both expand one row tile of weights at a time to w + 1 (the unsigned operand
// of vpmaddubsw / vpdpbusd) and multiply every token against it, in blocks of
// tokens whose accumulators fit in registers.
//
// As in q4_rows_ymm.h, the templates are only instantiated with types local to
// each table's file (lambdas), so every instantiation, compiled with that
// file's target flags, and its thread_local buffers are that file's own.
#pragma once
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "../ternary_format.h"

namespace bitnet {

// This thread's buffers: the expanded tile, the m x 64 int32 sums of that
// tile, and each token's sum_k q[k], which the + 1 adds to every row sum.
struct GemmScratch {
  uint8_t* expanded;    // w.chunks() * expanded_chunk_bytes, kAlign-aligned
  int32_t* sums;        // m x kRowTile, kAlign-aligned
  const int32_t* qsum;  // m: sum_bytes(row i of q, w.padded_cols())
};

// Sizes this thread's buffers for an m-token GEMM on w and fills qsum.
// sum_bytes(p, n) returns sum_k p[k] over n bytes (n a multiple of 64).
template <size_t kAlign, class SumBytes>
GemmScratch gemm_scratch(const TernaryView& w, const int8_t* q, size_t q_stride, size_t m,
                         size_t expanded_chunk_bytes, SumBytes sum_bytes) {
  struct alignas(kAlign) Line {
    uint8_t bytes[kAlign];
  };
  thread_local std::vector<Line> expanded, sums;
  thread_local std::vector<int32_t> qsum;
  expanded.resize(w.chunks() * expanded_chunk_bytes / sizeof(Line));
  sums.resize(m * kRowTile * sizeof(int32_t) / sizeof(Line));
  qsum.resize(m);
  for (size_t i = 0; i < m; ++i) qsum[i] = sum_bytes(q + i * q_stride, w.padded_cols());
  return {reinterpret_cast<uint8_t*>(expanded.data()), reinterpret_cast<int32_t*>(sums.data()), qsum.data()};
}

// Calls fn(std::integral_constant<int, n>{}) for a runtime n in [1, 4], so that
// fn can instantiate a kernel for that many tiles or tokens.
template <class Fn>
void with_count_1_to_4(size_t n, Fn&& fn) {
  switch (n) {
    case 4: fn(std::integral_constant<int, 4>{}); break;
    case 3: fn(std::integral_constant<int, 3>{}); break;
    case 2: fn(std::integral_constant<int, 2>{}); break;
    default: fn(std::integral_constant<int, 1>{}); break;
  }
}

// Runs fn(std::integral_constant<int, kTokens>{}, i) for tokens [i, i + kTokens)
// of m: blocks of kBlock tokens, then one block of the 1 to 3 left over.
template <int kBlock, class Fn>
void for_token_blocks(size_t m, Fn&& fn) {
  static_assert(kBlock == 4, "with_count_1_to_4 covers the 1 to 3 tokens left over");
  size_t i = 0;
  for (; i + kBlock <= m; i += kBlock) fn(std::integral_constant<int, kBlock>{}, i);
  if (i < m) with_count_1_to_4(m - i, [&](auto tokens) { fn(tokens, i); });
}

}  // namespace bitnet
