// PLACEHOLDER until the neon ternary kernels land: keeps the scalar entries.
#include "neon.h"

namespace bitnet {
void fill_neon_ternary(KernelTable&) {}
}  // namespace bitnet
