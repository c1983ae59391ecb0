// A minimal test harness for the C++ suites: named cases, CHECK macros that
// report file:line and keep going, and a closing "N passed, N failed" line.
#pragma once
#include <cstdio>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "isa.h"

namespace check {

struct Case {
  std::string name;
  std::function<void()> fn;
};
inline std::vector<Case>& cases() {
  static std::vector<Case> c;
  return c;
}
inline int& failures_in_case() {
  static int n = 0;
  return n;
}
struct Register {
  Register(const char* name, std::function<void()> fn) { cases().push_back({name, std::move(fn)}); }
};

inline void fail(const char* file, int line, const std::string& what) {
  if (failures_in_case() < 10) std::fprintf(stderr, "  %s:%d: %s\n", file, line, what.c_str());
  ++failures_in_case();
}

// Runs every case (or those whose name contains argv[1]); exit code 1 on failure.
inline int run_all(int argc, char** argv) {
  int passed = 0, failed = 0;
  for (const auto& c : cases()) {
    if (argc > 1 && c.name.find(argv[1]) == std::string::npos) continue;
    failures_in_case() = 0;
    c.fn();
    if (failures_in_case() == 0) {
      ++passed;
      std::printf("ok   %s\n", c.name.c_str());
    } else {
      ++failed;
      std::printf("FAIL %s (%d failed checks)\n", c.name.c_str(), failures_in_case());
    }
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}

// Every ISA table this CPU can run except scalar, the reference.
inline std::vector<const bitnet::KernelTable*> simd_tables() {
  std::vector<const bitnet::KernelTable*> out;
  for (const auto& name : bitnet::runnable_isas())
    if (name != "scalar") out.push_back(&bitnet::kernels_for(name));
  return out;
}

// The SIMD tables and the scalar one.
inline std::vector<const bitnet::KernelTable*> runnable_tables() {
  std::vector<const bitnet::KernelTable*> out = simd_tables();
  out.push_back(&bitnet::scalar_kernels());
  return out;
}

}  // namespace check

#define TEST_CASE(name)                                            \
  static void name();                                              \
  static check::Register name##_registration(#name, name);         \
  static void name()

#define CHECK(cond)                                                \
  do {                                                             \
    if (!(cond)) check::fail(__FILE__, __LINE__, "CHECK(" #cond ")"); \
  } while (0)

#define CHECK_EQ(a, b)                                                                    \
  do {                                                                                    \
    const auto va_ = (a);                                                                 \
    const auto vb_ = (b);                                                                 \
    if (!(va_ == vb_))                                                                    \
      check::fail(__FILE__, __LINE__,                                                     \
                  std::string(#a " == " #b ": ") + std::to_string(va_) + " vs " + std::to_string(vb_)); \
  } while (0)

#define TEST_MAIN \
  int main(int argc, char** argv) { return check::run_all(argc, argv); }
