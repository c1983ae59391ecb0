// AVX-512 VNNI kernel of the 4-bit LM head (kernel_table.h matvec_q4): the
// shared 256-bit row loop (x86_avx2/q4_rows_ymm.h) with AVX512VL vpdpbusd as
// its dot, one per 32-byte nibble run against q.
//
// Why 256 bits: the head is read cold from DRAM, after the layers' 521 MB.
// There, with one thread on the dev machine, the 2B4T head took 8.8-9.2 ms
// with 64-byte loads into 512-bit vpdpbusd (7.6-7.9 ms with a software
// prefetch 2 KiB ahead; 512-bit vpmaddubsw + vpmaddwd was no better) and
// 5.5-5.8 ms with this loop, three interleaved runs each (/tmp harness
// cycling over 1 GiB of copies). Hot in cache the 512-bit loop was faster
// (5.0 vs 7 ms), which is not how decode reads the head.

// First, so that q4_rows_ymm.h's <immintrin.h> is already the quiet one.
#include "avx512_intrinsics.h"

#include "../x86_avx2/q4_rows_ymm.h"
#include "avx512.h"

namespace bitnet {
namespace {

struct VnniDot {
  // Products of nibbles and q are at most 15 * 128, so no sum of four saturates.
  static __m256i madd(__m256i acc, __m256i u, __m256i s) { return _mm256_dpbusd_epi32(acc, u, s); }
};

}  // namespace

void fill_avx512_lm_head(KernelTable& k) { k.matvec_q4 = matvec_q4_rows_ymm<VnniDot>; }

}  // namespace bitnet
