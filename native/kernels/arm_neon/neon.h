// The neon kernel table is assembled from two files: neon_ternary.cpp (ternary
// GEMV/GEMM) and neon_float.cpp (quantization, norms, attention, LM head).
#pragma once
#include "../kernel_table.h"

namespace bitnet {
void fill_neon_ternary(KernelTable& k);
void fill_neon_float(KernelTable& k);
}  // namespace bitnet
