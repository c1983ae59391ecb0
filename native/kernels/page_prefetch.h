// A prefetch of the page a forward stream will reach a few pages from now,
// for kernels that stream from DRAM with software line prefetches.
//
// Measured on the Zen 5 class VM of docs/kernels.md (4 KB pages under nested
// paging): the AVX-512 GEMV with its non-temporal line prefetches 6 KB ahead
// read 24-28 GB/s on one thread; adding one prefetch 16 KB ahead, once per
// page, lifted it to 32-38 GB/s (2 threads: 37-45 to 41-64 GB/s). The line
// prefetches that first reach a page seem to wait for its translation, which
// the far prefetch has by then brought into the TLB.
#pragma once
#include <cstddef>
#include <cstdint>

namespace bitnet {

constexpr size_t kStreamPageBytes = 4096;
constexpr size_t kPageAheadBytes = 16384;

// Call with every step of `step` bytes (at most a page) of a stream walked
// forward in memory order: when the step starts a page of the stream
// kPageAheadBytes ahead, prefetches that page's first line (non-temporal:
// prefetchnta on x86, PLDL1STRM on Arm). Prefetches never fault.
inline void prefetch_page_ahead(const uint8_t* position, size_t step) {
  const uintptr_t ahead = reinterpret_cast<uintptr_t>(position) + kPageAheadBytes;
  if ((ahead & (kStreamPageBytes - 1)) < step) __builtin_prefetch(reinterpret_cast<const void*>(ahead), 0, 0);
}

}  // namespace bitnet
