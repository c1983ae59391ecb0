#include "isa.h"

#include <cstdlib>
#include <mutex>
#include <stdexcept>

#if defined(BITNET_HAVE_X86)
#include <cpuid.h>
#elif defined(BITNET_HAVE_NEON)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

namespace bitnet {

// Tables of ISAs this target cannot contain; the others live in their own files.
#if !defined(BITNET_HAVE_X86)
const KernelTable* avx2_kernels() { return nullptr; }
const KernelTable* avx512_kernels() { return nullptr; }
#endif
#if !defined(BITNET_HAVE_NEON)
const KernelTable* neon_kernels() { return nullptr; }
#endif

namespace {

struct Features {
  bool avx2 = false;    // AVX2 + FMA + F16C + BMI2, with YMM state enabled by the OS
  bool avx512 = false;  // F, BW, VL, DQ, VNNI, VBMI, with ZMM/opmask state enabled
  bool neon = false;    // AArch64 Advanced SIMD with the dot-product extension
  std::string names;
};

Features detect() {
  Features f;
#if defined(BITNET_HAVE_X86)
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = c & (1u << 27), fma = c & (1u << 12), f16c = c & (1u << 29);
  unsigned long long xcr0 = 0;
  if (osxsave) {
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    xcr0 = (static_cast<unsigned long long>(hi) << 32) | lo;
  }
  const bool ymm_os = (xcr0 & 0x6) == 0x6;     // SSE + AVX state
  const bool zmm_os = (xcr0 & 0xE6) == 0xE6;   // + opmask, ZMM_Hi256, Hi16_ZMM
  unsigned b7 = 0, c7 = 0;
  if (__get_cpuid_count(7, 0, &a, &b7, &c7, &d)) {
    const bool avx2 = b7 & (1u << 5), bmi2 = b7 & (1u << 8);
    const bool f512 = b7 & (1u << 16), dq = b7 & (1u << 17), bw = b7 & (1u << 30),
               vl = b7 & (1u << 31);
    const bool vbmi = c7 & (1u << 1), vnni = c7 & (1u << 11);
    const std::pair<const char*, bool> flags[] = {
        {"avx2", avx2}, {"fma", fma}, {"f16c", f16c}, {"bmi2", bmi2}, {"avx512f", f512},
        {"avx512dq", dq}, {"avx512bw", bw}, {"avx512vl", vl}, {"avx512vbmi", vbmi},
        {"avx512vnni", vnni}, {"os-ymm", ymm_os}, {"os-zmm", zmm_os}};
    for (const auto& fl : flags)
      if (fl.second) f.names += std::string(f.names.empty() ? "" : " ") + fl.first;
    f.avx2 = ymm_os && avx2 && fma && f16c && bmi2;
    f.avx512 = f.avx2 && zmm_os && f512 && dq && bw && vl && vbmi && vnni;
  }
#elif defined(BITNET_HAVE_NEON)
  const unsigned long hw = getauxval(AT_HWCAP);
  const bool asimd = hw & HWCAP_ASIMD, dot = hw & HWCAP_ASIMDDP;
  f.names = std::string(asimd ? "asimd" : "") + (dot ? " asimddp" : "");
  f.neon = asimd && dot;
#endif
  return f;
}

const Features& features() {
  static const Features f = detect();
  return f;
}

// The table compiled for an ISA and whether this CPU can run it.
struct Candidate {
  const KernelTable* table;
  bool cpu_ok;
};

Candidate candidate(const std::string& isa) {
  if (isa == "scalar") return {&scalar_kernels(), true};
  if (isa == "avx2") return {avx2_kernels(), features().avx2};
  if (isa == "avx512") return {avx512_kernels(), features().avx512};
  if (isa == "neon") return {neon_kernels(), features().neon};
  throw std::runtime_error("unknown ISA \"" + isa + "\" (expected one of: avx512, avx2, neon, scalar, auto)");
}

}  // namespace

const std::vector<std::string>& known_isas() {
  static const std::vector<std::string> names = {"avx512", "avx2", "neon", "scalar"};
  return names;
}

std::vector<std::string> runnable_isas() {
  std::vector<std::string> out;
  for (const auto& n : known_isas()) {
    const Candidate c = candidate(n);
    if (c.table && c.cpu_ok) out.push_back(n);
  }
  return out;
}

const KernelTable& kernels_for(const std::string& isa) {
  const Candidate c = candidate(isa);
  if (!c.table) throw std::runtime_error("ISA \"" + isa + "\" is not compiled into this build of bitnet-gen");
  if (!c.cpu_ok)
    throw std::runtime_error("ISA \"" + isa + "\" is not supported by this CPU (it has: " +
                             (features().names.empty() ? std::string("none") : features().names) + ")");
  return *c.table;
}

const KernelTable& active_kernels() {
  static std::mutex mu;
  static const KernelTable* chosen = nullptr;
  std::lock_guard<std::mutex> lock(mu);
  if (!chosen) {
    const char* env = std::getenv("BITNET_ISA");
    const std::string want = env ? env : "";
    if (!want.empty() && want != "auto") {
      try {
        chosen = &kernels_for(want);
      } catch (const std::exception& e) {
        throw std::runtime_error(std::string("BITNET_ISA: ") + e.what());
      }
    } else {
      chosen = &kernels_for(runnable_isas().front());
    }
  }
  return *chosen;
}

std::string cpu_features() { return features().names; }

}  // namespace bitnet
