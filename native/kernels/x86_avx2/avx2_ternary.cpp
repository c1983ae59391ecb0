// PLACEHOLDER until the avx2 ternary kernels land: keeps the scalar entries.
#include "avx2.h"

namespace bitnet {
void fill_avx2_ternary(KernelTable&) {}
}  // namespace bitnet
