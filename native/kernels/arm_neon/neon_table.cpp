#include "neon.h"
#include "../stream_read.h"

namespace bitnet {

const KernelTable* neon_kernels() {
  static const KernelTable table = [] {
    KernelTable k = scalar_kernels();
    k.isa_name = "neon";
    fill_neon_ternary(k);
    fill_neon_float(k);
    fill_neon_lm_head(k);
    k.stream_read = stream_read_vectors<16>;
    return k;
  }();
  return &table;
}

}  // namespace bitnet
