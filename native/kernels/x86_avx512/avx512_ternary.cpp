// PLACEHOLDER until the avx512 ternary kernels land: keeps the scalar entries.
#include "avx512.h"

namespace bitnet {
void fill_avx512_ternary(KernelTable&) {}
}  // namespace bitnet
