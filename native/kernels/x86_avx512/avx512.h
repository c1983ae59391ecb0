// The avx512 kernel table is assembled from two files: avx512_ternary.cpp (ternary
// GEMV/GEMM) and avx512_float.cpp (quantization, norms, attention, LM head).
#pragma once
#include "../kernel_table.h"

namespace bitnet {
void fill_avx512_ternary(KernelTable& k);
void fill_avx512_float(KernelTable& k);
}  // namespace bitnet
