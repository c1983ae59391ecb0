// PLACEHOLDER until the neon float kernels land: keeps the scalar entries.
#include "neon.h"

namespace bitnet {
void fill_neon_float(KernelTable&) {}
}  // namespace bitnet
