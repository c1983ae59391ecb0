// The avx2 kernel table is assembled from two files: avx2_ternary.cpp (ternary
// GEMV/GEMM) and avx2_float.cpp (quantization, norms, attention, LM head).
#pragma once
#include "../kernel_table.h"

namespace bitnet {
void fill_avx2_ternary(KernelTable& k);
void fill_avx2_float(KernelTable& k);
}  // namespace bitnet
