// AVX2 kernel of the 4-bit LM head (kernel_table.h matvec_q4): the shared
// 256-bit row loop (q4_rows_ymm.h) with vpmaddubsw + vpmaddwd as its dot.
#include <immintrin.h>

#include "avx2.h"
#include "q4_rows_ymm.h"

namespace bitnet {
namespace {

struct Avx2Dot {
  // vpmaddubsw multiplies unsigned u by signed s: a pair sums to at most
  // 2 * 15 * 128 for nibbles, 2 * 1 * 128 for the ones of sum(q), far from
  // int16 saturation; vpmaddwd widens the pairs to int32.
  static __m256i madd(__m256i acc, __m256i u, __m256i s) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
  }
};

}  // namespace

void fill_avx2_lm_head(KernelTable& k) { k.matvec_q4 = matvec_q4_rows_ymm<Avx2Dot>; }

}  // namespace bitnet
