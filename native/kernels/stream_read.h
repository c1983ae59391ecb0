// The streaming read that read-bandwidth measurements time (KernelTable::
// stream_read). One template for every ISA: each table file instantiates it
// with its own vector width and compiles it with its own target flags, so the
// loads are as wide as the ISA's (xmm, ymm, zmm or q registers): wider loads
// read faster from DRAM on the Zen 4 VM of docs/kernels.md. The anonymous
// namespace keeps each file's instantiations its own.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernel_table.h"
#include "stream_prefetch.h"

namespace bitnet {
namespace {

// Sum of the 64-bit words of bytes (a multiple of 64) of data, loaded
// kVectorBytes at a time, prefetching kAhead bytes ahead with
// __builtin_prefetch locality kLocality (3: prefetcht0, 0: prefetchnta on
// x86, a streaming PLDL1STRM on Arm) or not at all when kAhead is 0, and
// with kPaged each page once further ahead. Addresses past the end never fault.
template <size_t kVectorBytes, int kLocality, size_t kAhead, bool kPaged = false>
uint64_t sum_words_streaming(const uint8_t* data, size_t bytes) {
  typedef uint64_t Vector __attribute__((vector_size(kVectorBytes)));
  constexpr size_t kPerLine = 64 / kVectorBytes;
  Vector acc[kPerLine] = {};
  for (const uint8_t* p = data; p < data + bytes; p += 64) {
    if (kAhead) __builtin_prefetch(p + kAhead, 0, kLocality);
    if (kPaged) prefetch_page_ahead(p, 64);
    for (size_t j = 0; j < kPerLine; ++j) {
      Vector v;
      std::memcpy(&v, p + j * kVectorBytes, kVectorBytes);
      acc[j] += v;
    }
  }
  uint64_t sum = 0;
  for (size_t j = 0; j < kPerLine; ++j)
    for (size_t i = 0; i < kVectorBytes / 8; ++i) sum += acc[j][i];
  return sum;
}

template <size_t kVectorBytes>
uint64_t stream_read_vectors(const uint8_t* data, size_t bytes, ReadPrefetch how) {
  switch (how) {
    case ReadPrefetch::kT0Far: return sum_words_streaming<kVectorBytes, 3, (16 << 10)>(data, bytes);
    case ReadPrefetch::kNonTemporalNear: return sum_words_streaming<kVectorBytes, 0, (4 << 10)>(data, bytes);
    case ReadPrefetch::kNonTemporalNearPaged:
      return sum_words_streaming<kVectorBytes, 0, (4 << 10), true>(data, bytes);
    case ReadPrefetch::kNone: break;
  }
  return sum_words_streaming<kVectorBytes, 0, 0>(data, bytes);
}

}  // namespace
}  // namespace bitnet
