// The avx2 kernel table is assembled from three files: avx2_ternary.cpp (ternary
// GEMV/GEMM), avx2_float.cpp (quantization, norms, attention, LM head) and
// avx2_lm_head.cpp (the 4-bit LM head).
#pragma once
#include "../kernel_table.h"

namespace bitnet {
void fill_avx2_ternary(KernelTable& k);
void fill_avx2_float(KernelTable& k);
void fill_avx2_lm_head(KernelTable& k);
}  // namespace bitnet
