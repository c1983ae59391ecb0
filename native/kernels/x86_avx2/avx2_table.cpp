#include "avx2.h"

namespace bitnet {

const KernelTable* avx2_kernels() {
  static const KernelTable table = [] {
    KernelTable k = scalar_kernels();
    k.isa_name = "avx2";
    fill_avx2_ternary(k);
    fill_avx2_float(k);
    fill_avx2_lm_head(k);
    return k;
  }();
  return &table;
}

}  // namespace bitnet
