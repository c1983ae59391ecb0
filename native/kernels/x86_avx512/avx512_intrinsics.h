// <immintrin.h> for code that uses AVX-512 intrinsics. GCC 12's AVX-512
// headers build results from _mm512_undefined_*() and trip -Wuninitialized /
// -Wmaybe-uninitialized wherever those intrinsics are inlined (GCC bug 105593,
// fixed in GCC 13). The warnings are reported at the headers' own lines, so
// silencing them around this include leaves every other warning on.
#pragma once
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
