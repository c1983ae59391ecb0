#include "avx512.h"
#include "../stream_read.h"

namespace bitnet {

const KernelTable* avx512_kernels() {
  static const KernelTable table = [] {
    KernelTable k = scalar_kernels();
    k.isa_name = "avx512";
    fill_avx512_ternary(k);
    fill_avx512_float(k);
    fill_avx512_lm_head(k);
    k.stream_read = stream_read_vectors<64>;
    return k;
  }();
  return &table;
}

}  // namespace bitnet
