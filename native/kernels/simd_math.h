// Vector math written once for every SIMD table. Each ISA file supplies a
// traits struct S with its float vector S::F, int32 vector S::I and:
//   set1(float), add(F, F), mul(F, F), div(F, F), fmadd(a, b, c) = a * b + c,
//   min, max, round_nearest(F) (ties to even), to_int(F) (of integral values),
//   half(I) (arithmetic shift right by one), sub(I, I) and pow2(I k) = 2^k
//   for k in [-126, 127].
#pragma once

namespace bitnet {
namespace simd {

// exp(x) for every finite x, within 1.3 ulp of the exact value (measured on
// [-87, 88.7]; std::exp is within 1). Like std::exp it overflows to +Inf
// (silu of a large negative gate is then -0, as in the scalar kernel) and
// underflows gradually to 0. Cephes' expf scheme: x = n ln2 + r with ln2
// split in two so r is exact, a degree-7 polynomial for e^r, and 2^n applied
// as two factors so n from -150 to 129 needs no special case.
template <class S>
inline typename S::F exp(typename S::F x) {
  using F = typename S::F;
  using I = typename S::I;
  x = S::min(S::max(x, S::set1(-104.f)), S::set1(89.f));  // past these exp is 0 or Inf
  const F n = S::round_nearest(S::mul(x, S::set1(1.44269504088896341f)));
  F r = S::fmadd(n, S::set1(-0.693359375f), x);
  r = S::fmadd(n, S::set1(2.12194440e-4f), r);
  F p = S::set1(1.9875691500e-4f);
  p = S::fmadd(p, r, S::set1(1.3981999507e-3f));
  p = S::fmadd(p, r, S::set1(8.3334519073e-3f));
  p = S::fmadd(p, r, S::set1(4.1665795894e-2f));
  p = S::fmadd(p, r, S::set1(1.6666665459e-1f));
  p = S::fmadd(p, r, S::set1(5.0000001201e-1f));
  p = S::fmadd(p, S::mul(r, r), S::add(r, S::set1(1.f)));
  const I k = S::to_int(n);
  const I k_half = S::half(k);
  return S::mul(S::mul(p, S::pow2(k_half)), S::pow2(S::sub(k, k_half)));
}

// silu(g) * u = g / (1 + exp(-g)) * u, the scalar kernel's formula.
template <class S>
inline typename S::F silu_gate(typename S::F g, typename S::F u) {
  const typename S::F e = exp<S>(S::mul(g, S::set1(-1.f)));
  return S::mul(S::div(g, S::add(S::set1(1.f), e)), u);
}

}  // namespace simd
}  // namespace bitnet
