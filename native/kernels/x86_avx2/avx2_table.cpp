#include "avx2.h"
#include "../stream_read.h"

namespace bitnet {

const KernelTable* avx2_kernels() {
  static const KernelTable table = [] {
    KernelTable k = scalar_kernels();
    k.isa_name = "avx2";
    fill_avx2_ternary(k);
    fill_avx2_float(k);
    fill_avx2_lm_head(k);
    k.stream_read = stream_read_vectors<32>;
    return k;
  }();
  return &table;
}

}  // namespace bitnet
