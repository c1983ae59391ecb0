// PLACEHOLDER until the avx512 float kernels land: keeps the scalar entries.
#include "avx512.h"

namespace bitnet {
void fill_avx512_float(KernelTable&) {}
}  // namespace bitnet
