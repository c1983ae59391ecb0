// The avx512 kernel table is assembled from three files: avx512_ternary.cpp (ternary
// GEMV/GEMM), avx512_float.cpp (quantization, norms, attention, LM head) and
// avx512_lm_head.cpp (the 4-bit LM head).
#pragma once
#include "../kernel_table.h"

namespace bitnet {
void fill_avx512_ternary(KernelTable& k);
void fill_avx512_float(KernelTable& k);
void fill_avx512_lm_head(KernelTable& k);
}  // namespace bitnet
