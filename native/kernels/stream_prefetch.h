// Software prefetch for kernels that stream from DRAM: the ternary GEMVs'
// weight stream, and the read-bandwidth reference that must read at least as
// well as they do (stream_read.h).
//
// Two prefetches, both non-temporal (prefetchnta on x86, PLDL1STRM on Arm),
// measured on the Zen 5 class VM of docs/kernels.md:
// * every line, 3 blocks (6 KB) ahead: 5-10 % faster from DRAM than prefetcht0
//   16 KB ahead; among distances of 2 to 16 KB the best one changed from run to
//   run, and 6 KB was never far from it;
// * each 4 KB page once more, 16 KB ahead: lifted the AVX-512 GEMV from 24-28
//   to 32-38 GB/s on one thread (2 threads: 37-45 to 41-64 GB/s). The line
//   prefetches that first reach a page seem to wait for its translation (4 KB
//   pages under nested paging), which the far prefetch has by then brought
//   into the TLB.
// Near the end of a matrix the addresses may lie past it: prefetches never fault.
#pragma once
#include <cstddef>
#include <cstdint>

#include "ternary_format.h"

namespace bitnet {

constexpr size_t kStreamPageBytes = 4096;
constexpr size_t kPageAheadBytes = 16384;
constexpr size_t kGemvPrefetchBytes = 3 * kBlockBytes;

// Call with every step of `step` bytes (at most a page) of a stream walked
// forward in memory order: when the step starts a page of the stream
// kPageAheadBytes ahead, prefetches that page's first line.
inline void prefetch_page_ahead(const uint8_t* position, size_t step) {
  const uintptr_t ahead = reinterpret_cast<uintptr_t>(position) + kPageAheadBytes;
  if ((ahead & (kStreamPageBytes - 1)) < step) __builtin_prefetch(reinterpret_cast<const void*>(ahead), 0, 0);
}

// Call with each group (kGroupBytes) of a GEMV's weights in memory order:
// prefetches both lines of the group kGemvPrefetchBytes ahead, and the page
// kPageAheadBytes ahead when this group starts it.
inline void prefetch_gemv_stream(const uint8_t* group) {
  __builtin_prefetch(group + kGemvPrefetchBytes, 0, 0);
  __builtin_prefetch(group + kGemvPrefetchBytes + 64, 0, 0);
  prefetch_page_ahead(group, kGroupBytes);
}

}  // namespace bitnet
