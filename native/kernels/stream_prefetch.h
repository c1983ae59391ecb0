// Software prefetch for kernels that stream from DRAM: the ternary GEMVs' and
// the LM heads' weight streams, and the read-bandwidth reference that must
// read at least as well as they do (stream_read.h).
//
// Two prefetches, both non-temporal (prefetchnta on x86, PLDL1STRM on Arm),
// measured on the Zen 5 class VM of docs/kernels.md:
// * every line, 6 KB ahead: 5-10 % faster from DRAM than prefetcht0 16 KB
//   ahead; among distances of 2 to 16 KB the best one changed from run to
//   run, and 6 KB was never far from it;
// * each 4 KB page once more, 16 KB ahead: lifted the AVX-512 GEMV from 24-28
//   to 32-38 GB/s on one thread (2 threads: 37-45 to 41-64 GB/s), and the
//   int8 LM head from 29-32 to 36-39 GB/s (2 threads: 54 to 75 GB/s). The
//   line prefetches that first reach a page seem to wait for its translation
//   (4 KB pages under nested paging), which the far prefetch has by then
//   brought into the TLB.
// Near the end of a matrix the addresses may lie past it: prefetches never fault.
#pragma once
#include <cstddef>
#include <cstdint>

#include "ternary_format.h"

namespace bitnet {

constexpr size_t kStreamPageBytes = 4096;
constexpr size_t kPageAheadBytes = 16384;
constexpr size_t kLineAheadBytes = 3 * kBlockBytes;

// Call with every step of `step` bytes (at most a page) of a stream walked
// forward in memory order: when the step starts a page of the stream
// kPageAheadBytes ahead, prefetches that page's first line.
inline void prefetch_page_ahead(const uint8_t* position, size_t step) {
  const uintptr_t ahead = reinterpret_cast<uintptr_t>(position) + kPageAheadBytes;
  if ((ahead & (kStreamPageBytes - 1)) < step) __builtin_prefetch(reinterpret_cast<const void*>(ahead), 0, 0);
}

// Call where a weight stream starts: prefetches the lines and pages that
// prefetch_stream, called from the start on, reaches only kLineAheadBytes and
// kPageAheadBytes later. A GEMV piece is 0.1-1 MB, so its first page
// translations and lines would otherwise arrive one after another.
inline void prefetch_stream_start(const void* start) {
  const uint8_t* p = static_cast<const uint8_t*>(start);
  for (size_t page = 0; page <= kPageAheadBytes; page += kStreamPageBytes) __builtin_prefetch(p + page, 0, 0);
  for (size_t line = 64; line < kLineAheadBytes; line += 64) __builtin_prefetch(p + line, 0, 0);
}

// Call with every kStepBytes (whole lines) of a weight stream walked forward
// in memory order (a ternary GEMV's groups, an LM head's rows): prefetches the
// step's lines kLineAheadBytes ahead, and the page kPageAheadBytes ahead when
// this step starts it.
template <size_t kStepBytes>
inline void prefetch_stream(const void* step) {
  static_assert(kStepBytes % 64 == 0 && kStepBytes <= kStreamPageBytes, "whole lines, at most a page");
  const uint8_t* p = static_cast<const uint8_t*>(step);
  for (size_t line = 0; line < kStepBytes; line += 64) __builtin_prefetch(p + kLineAheadBytes + line, 0, 0);
  prefetch_page_ahead(p, kStepBytes);
}

}  // namespace bitnet
