// Picks the kernel table for this CPU: from CPUID and the OS's saved register
// state (xgetbv) on x86, from HWCAP on Arm, or from BITNET_ISA when set.
#pragma once
#include <string>
#include <vector>

#include "kernel_table.h"

namespace bitnet {

// ISA names, best first: "avx512", "avx2", "neon", "scalar".
const std::vector<std::string>& known_isas();

// ISAs that this binary contains and this CPU can run, best first.
std::vector<std::string> runnable_isas();

// The table for one ISA. Throws std::runtime_error naming the ISA when it is
// unknown, not compiled into this binary, or not supported by this CPU.
const KernelTable& kernels_for(const std::string& isa);

// The table the runtime uses: BITNET_ISA if set (same errors as kernels_for,
// "auto" or empty means best), else the best runnable ISA. Cached after the
// first successful call.
const KernelTable& active_kernels();

// CPU features relevant to the kernels, e.g. "avx2 fma f16c avx512f avx512bw ...".
std::string cpu_features();

}  // namespace bitnet
