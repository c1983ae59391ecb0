// PLACEHOLDER until the avx2 float kernels land: keeps the scalar entries.
#include "avx2.h"

namespace bitnet {
void fill_avx2_float(KernelTable&) {}
}  // namespace bitnet
