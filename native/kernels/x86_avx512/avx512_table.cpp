#include "avx512.h"

namespace bitnet {

const KernelTable* avx512_kernels() {
  static const KernelTable table = [] {
    KernelTable k = scalar_kernels();
    k.isa_name = "avx512";
    fill_avx512_ternary(k);
    fill_avx512_float(k);
    fill_avx512_lm_head(k);
    return k;
  }();
  return &table;
}

}  // namespace bitnet
