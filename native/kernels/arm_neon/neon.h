// The neon kernel table is assembled from three files: neon_ternary.cpp (ternary
// GEMV/GEMM), neon_float.cpp (quantization, norms, attention, LM head) and
// neon_lm_head.cpp (the 4-bit LM head).
#pragma once
#include "../kernel_table.h"

namespace bitnet {
void fill_neon_ternary(KernelTable& k);
void fill_neon_float(KernelTable& k);
void fill_neon_lm_head(KernelTable& k);
}  // namespace bitnet
