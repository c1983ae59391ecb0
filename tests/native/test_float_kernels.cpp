// Every float entry of every runnable SIMD table against the scalar table,
// plus thread-count independence of the multithreaded ops built on them, and
// the streaming read that read-bandwidth measurements time.
//
// Exact entries (absmax, quantize_i8, relu2_gate, add_inplace, f16 <-> f32,
// matvec_i8) are compared bit for bit. The others sum in a different order or
// use a vector exp, and are held to error bounds derived next to each test.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "check.h"
#include "kernel_table.h"
#include "ops.h"
#include "thread_pool.h"

using namespace bitnet;

namespace {

constexpr float kUnit = 5.9604645e-8f;  // 2^-24, float's unit roundoff

// Lengths around every vector width (4, 8, 16, 64) and the model's own sizes.
const size_t kLengths[] = {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 2560, 6912};

uint32_t bits_of(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}
float from_bits(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}

std::string where(const KernelTable& t, const char* entry, size_t n, size_t i) {
  return std::string(t.isa_name) + " " + entry + ", element " + std::to_string(i) + " of " + std::to_string(n);
}

// Reports the first index where the two buffers differ in any byte of an element.
template <class T>
void expect_identical(const KernelTable& t, const char* entry, const std::vector<T>& got,
                      const std::vector<T>& want, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (std::memcmp(&got[i], &want[i], sizeof(T)) != 0) {
      check::fail(__FILE__, __LINE__, where(t, entry, n, i) + ": not bit-identical to scalar");
      return;
    }
  }
}

// Reports the first index where |got - want| > bound[i].
void expect_close(const KernelTable& t, const char* entry, const std::vector<float>& got,
                  const std::vector<float>& want, const std::vector<float>& bound, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const float err = std::fabs(got[i] - want[i]);
    if (!(err <= bound[i])) {
      check::fail(__FILE__, __LINE__,
                  where(t, entry, n, i) + ": " + std::to_string(got[i]) + " vs scalar " +
                      std::to_string(want[i]) + " (error " + std::to_string(err) + " > " +
                      std::to_string(bound[i]) + ")");
      return;
    }
  }
}

std::vector<float> normal_floats(size_t n, float sigma, std::mt19937& rng) {
  std::normal_distribution<float> dist(0.f, sigma);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

std::vector<int8_t> random_i8(size_t n, std::mt19937& rng) {
  std::vector<int8_t> v(n);
  for (auto& x : v) x = static_cast<int8_t>(static_cast<int>(rng() % 256) - 128);
  return v;
}

std::vector<f16_t> to_f16(const std::vector<float>& v) {
  std::vector<f16_t> h(v.size());
  for (size_t i = 0; i < v.size(); ++i) h[i] = f32_to_f16_scalar(v[i]);
  return h;
}

// Random floats with edge values sprinkled in: zeros of both signs, exact
// quantization ties, values past the int8 range, huge and tiny magnitudes.
std::vector<float> floats_with_edges(size_t n, std::mt19937& rng) {
  static const float edges[] = {0.f,    -0.f,   0.5f,   1.5f,  2.5f,   -0.5f, -2.5f,  126.5f,
                                127.5f, -127.5f, -128.5f, 1e30f, -1e30f, 1e-30f, -1e-30f, 3e-39f};
  std::vector<float> v = normal_floats(n, 40.f, rng);
  for (size_t i = 0; i < n; i += 3) v[i] = edges[rng() % (sizeof(edges) / sizeof(edges[0]))];
  return v;
}

}  // namespace

TEST_CASE(absmax_and_quantize_are_bit_identical) {
  std::mt19937 rng(11);
  const KernelTable& ref = scalar_kernels();
  for (const KernelTable* t : check::simd_tables()) {
    for (size_t n : kLengths) {
      const std::vector<float> x = floats_with_edges(n, rng), plain = normal_floats(n, 3.f, rng);
      CHECK_EQ(bits_of(t->absmax(x.data(), n)), bits_of(ref.absmax(x.data(), n)));
      CHECK_EQ(bits_of(t->absmax(plain.data(), n)), bits_of(ref.absmax(plain.data(), n)));
      // scale 1 keeps the ties exact; 127/absmax is the model's use; 1e6 saturates.
      const float scales[] = {1.f, 127.f / std::max(ref.absmax(plain.data(), n), 1e-5f), 1e6f};
      for (float s : scales) {
        for (const auto* src : {&x, &plain}) {
          std::vector<int8_t> got(n + 1, 99), want(n + 1, 99);
          t->quantize_i8(src->data(), n, s, got.data());
          ref.quantize_i8(src->data(), n, s, want.data());
          expect_identical(*t, "quantize_i8", got, want, n + 1);  // n + 1: no write past n
        }
      }
    }
  }
}

TEST_CASE(relu2_gate_and_add_inplace_are_bit_identical) {
  std::mt19937 rng(12);
  const KernelTable& ref = scalar_kernels();
  for (const KernelTable* t : check::simd_tables()) {
    for (size_t n : kLengths) {
      const std::vector<float> gate = floats_with_edges(n, rng), up = floats_with_edges(n, rng);
      std::vector<float> got(n + 1, 7.f), want(n + 1, 7.f);
      t->relu2_gate(gate.data(), up.data(), n, got.data());
      ref.relu2_gate(gate.data(), up.data(), n, want.data());
      expect_identical(*t, "relu2_gate", got, want, n + 1);

      got = gate;
      want = gate;
      t->add_inplace(got.data(), up.data(), n);
      ref.add_inplace(want.data(), up.data(), n);
      expect_identical(*t, "add_inplace", got, want, n);
    }
  }
}

TEST_CASE(f16_to_f32_is_bit_identical_for_every_half) {
  std::vector<f16_t> all(65536);
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<f16_t>(i);
  std::vector<float> want(all.size());
  scalar_kernels().f16_to_f32(all.data(), all.size(), want.data());
  for (const KernelTable* t : check::simd_tables()) {
    std::vector<float> got(all.size());
    t->f16_to_f32(all.data(), all.size(), got.data());
    expect_identical(*t, "f16_to_f32", got, want, all.size());
    for (size_t n : kLengths) {  // tails, starting at NaNs and subnormals
      for (size_t start : {size_t{0x7C00}, size_t{0xFC01 - 16}, size_t{0x0001}}) {
        std::vector<float> part(n + 1, 5.f), part_want(n + 1, 5.f);
        const size_t len = std::min(n, all.size() - start);
        t->f16_to_f32(all.data() + start, len, part.data());
        std::copy(want.begin() + start, want.begin() + start + len, part_want.begin());
        expect_identical(*t, "f16_to_f32", part, part_want, n + 1);
      }
    }
  }
}

TEST_CASE(f32_to_f16_is_bit_identical_at_ties_overflow_subnormals_and_nans) {
  // Every half, the midpoint to the next one (a tie) and its neighbours on
  // either side, both signs; NaNs with payloads; random bit patterns.
  std::vector<float> x;
  for (uint32_t h = 0; h < 0x7C00; ++h) {
    const float lo = f16_to_f32_scalar(static_cast<f16_t>(h));
    const float mid = 0.5f * (lo + f16_to_f32_scalar(static_cast<f16_t>(h + 1)));  // exact in f32
    for (float f : {lo, mid, std::nextafter(mid, 0.f), std::nextafter(mid, INFINITY)}) {
      x.push_back(f);
      x.push_back(-f);
    }
  }
  for (uint32_t b : {0x7F800000u, 0xFF800000u, 0x7F800001u, 0x7FA00000u, 0x7FC00000u, 0xFF812345u,
                     0x7FFFFFFFu, 0x477FEFFFu, 0x477FF000u, 0x7F7FFFFFu, 0x33000000u, 0x33000001u,
                     0x00000001u, 0x80000001u})
    x.push_back(from_bits(b));
  std::mt19937 rng(13);
  for (int i = 0; i < 200000; ++i) x.push_back(from_bits(static_cast<uint32_t>(rng())));
  std::vector<f16_t> want(x.size());
  scalar_kernels().f32_to_f16(x.data(), x.size(), want.data());
  for (const KernelTable* t : check::simd_tables()) {
    std::vector<f16_t> got(x.size());
    t->f32_to_f16(x.data(), x.size(), got.data());
    expect_identical(*t, "f32_to_f16", got, want, x.size());
    for (size_t n : kLengths) {
      std::vector<f16_t> part(n + 1, 0x1234), part_want(n + 1, 0x1234);
      t->f32_to_f16(x.data() + x.size() - n, n, part.data());
      std::copy(want.end() - n, want.end(), part_want.begin());
      expect_identical(*t, "f32_to_f16", part, part_want, n + 1);
    }
  }
}

// Both kernels compute y = x * inv * g elementwise; only inv = 1/sqrt(mean(x^2)
// + eps) differs, through the order of the n-term sum of squares. For
// positive terms a sum's relative error is at most (n - 1) u, and the square
// root halves it; random data stays far below that, at about sqrt(n) u. The
// bound allows 8 sqrt(n) u relative, plus the final two roundings.
TEST_CASE(rmsnorm_matches_scalar_within_summation_error) {
  std::mt19937 rng(14);
  const KernelTable& ref = scalar_kernels();
  for (const KernelTable* t : check::simd_tables()) {
    for (size_t n : kLengths) {
      const std::vector<float> x = normal_floats(n, 2.f, rng), g = normal_floats(n, 1.f, rng);
      std::vector<float> got(n + 1, 3.f), want(n + 1, 3.f), bound(n + 1);
      t->rmsnorm(x.data(), g.data(), n, 1e-5f, got.data());
      ref.rmsnorm(x.data(), g.data(), n, 1e-5f, want.data());
      for (size_t i = 0; i < n; ++i) bound[i] = std::fabs(want[i]) * (8.f * std::sqrt(float(n)) + 4.f) * kUnit;
      expect_close(*t, "rmsnorm", got, want, bound, n + 1);
      std::vector<float> in_place = x;  // y may alias x
      t->rmsnorm(in_place.data(), g.data(), n, 1e-5f, in_place.data());
      in_place.push_back(3.f);
      expect_close(*t, "rmsnorm in place", in_place, want, bound, n + 1);
    }
  }
}

// Each output is a*c - b*s (or b*c + a*s). Computed with or without a fused
// multiply-add, each way is within u(|ac| + |bs|) + u|result| of the exact
// value, so two results differ by at most 4u(|ac| + |bs|).
TEST_CASE(rope_matches_scalar_within_rounding_of_each_product) {
  std::mt19937 rng(15);
  const KernelTable& ref = scalar_kernels();
  for (const KernelTable* t : check::simd_tables()) {
    for (size_t head_dim : {size_t{128}, size_t{64}, size_t{38}, size_t{2}}) {
      for (size_t n_heads : {size_t{1}, size_t{3}, size_t{20}}) {
        const size_t half = head_dim / 2, n = n_heads * head_dim;
        std::vector<float> cos_half(half), sin_half(half);
        for (size_t j = 0; j < half; ++j) {
          const float angle = 0.37f * static_cast<float>(j + 1) * static_cast<float>(rng() % 1000);
          cos_half[j] = std::cos(angle);
          sin_half[j] = std::sin(angle);
        }
        const std::vector<float> v = normal_floats(n, 5.f, rng);
        std::vector<float> got = v, want = v, bound(n);
        t->rope(got.data(), n_heads, head_dim, cos_half.data(), sin_half.data());
        ref.rope(want.data(), n_heads, head_dim, cos_half.data(), sin_half.data());
        for (size_t h = 0; h < n_heads; ++h) {
          for (size_t j = 0; j < half; ++j) {
            const float a = v[h * head_dim + j], b = v[h * head_dim + j + half];
            const float e = 4.f * kUnit * (std::fabs(a * cos_half[j]) + std::fabs(b * sin_half[j]) +
                                          std::fabs(b * cos_half[j]) + std::fabs(a * sin_half[j]));
            bound[h * head_dim + j] = bound[h * head_dim + j + half] = e;
          }
        }
        expect_close(*t, "rope", got, want, bound, n);
      }
    }
  }
}

// silu(g) u = g / (1 + exp(-g)) u; the vector exp is within 2 ulp of std::exp
// and the remaining operations are the scalar ones, so the result is within
// a few ulp: the bound is 16u relative. Gates below -88.7 make exp overflow
// to Inf and the result a signed zero in both.
TEST_CASE(silu_gate_matches_scalar_within_a_few_ulp) {
  std::mt19937 rng(16);
  const KernelTable& ref = scalar_kernels();
  for (const KernelTable* t : check::simd_tables()) {
    for (size_t n : kLengths) {
      std::vector<float> gate = normal_floats(n, 6.f, rng);
      const std::vector<float> up = normal_floats(n, 1.f, rng);
      const float edges[] = {0.f, -0.f, -88.f, -89.f, -100.f, -1e30f, 20.f, 89.f, 1e30f, 1e-20f};
      for (size_t i = 0; i < n; i += 5) gate[i] = edges[rng() % (sizeof(edges) / sizeof(edges[0]))];
      std::vector<float> got(n + 1, 9.f), want(n + 1, 9.f), bound(n + 1);
      t->silu_gate(gate.data(), up.data(), n, got.data());
      ref.silu_gate(gate.data(), up.data(), n, want.data());
      for (size_t i = 0; i < n; ++i) bound[i] = 16.f * kUnit * std::fabs(want[i]);
      expect_close(*t, "silu_gate", got, want, bound, n + 1);
    }
  }
}

namespace {

// `group` query heads sharing one KV head: q of group * head_dim, K and V of
// t_len positions in a cache of 5 KV heads (this KV head is the third), like
// the 2B model's layout.
struct AttendCase {
  size_t group, head_dim, t_len, kv_stride;
  std::vector<float> q;
  std::vector<f16_t> k, v;
  float max_abs_v = 0.f;
  AttendCase(size_t g, size_t hd, size_t tl, std::mt19937& rng) : group(g), head_dim(hd), t_len(tl), kv_stride(5 * hd) {
    q = normal_floats(g * hd, 2.f, rng);
    k = to_f16(normal_floats(tl * kv_stride, 1.5f, rng));
    v = to_f16(normal_floats(tl * kv_stride, 1.f, rng));
    for (f16_t h : v) max_abs_v = std::max(max_abs_v, std::fabs(f16_to_f32_scalar(h)));
  }
  std::vector<float> run(const KernelTable& t) const {
    std::vector<float> scores(group * t_len), out(group * head_dim + 1, 4.f);
    t.attend(q.data(), group, k.data() + 2 * head_dim, v.data() + 2 * head_dim, kv_stride, t_len, head_dim,
             1.f / std::sqrt(static_cast<float>(head_dim)), scores.data(), out.data());
    return out;
  }
};

}  // namespace

// A score s = scale q.K_t sums head_dim products in another order; its
// rounding error is a random walk of about sqrt(head_dim) u times the partial
// sums (here a few units), so about 2e-6 absolute. exp turns an absolute score
// error e into a relative probability error e, and each output is a convex
// combination of V values, so it moves by about 2e |V|max. The bound is
// 1e-5 |V|max; the errors seen are 3e-7 to 3e-6 |V|max. Groups of 1 to 5
// heads take every path of the grouped kernels (4, 2 and 1 heads at a time).
TEST_CASE(attend_matches_scalar_for_every_length_to_300_and_group_to_5) {
  std::mt19937 rng(17);
  const KernelTable& ref = scalar_kernels();
  for (const KernelTable* t : check::simd_tables()) {
    for (size_t head_dim : {size_t{128}, size_t{64}, size_t{40}, size_t{36}}) {
      for (size_t t_len = 1; t_len <= 300; ++t_len) {
        const size_t group = 1 + t_len % 5;
        const AttendCase c(group, head_dim, t_len, rng);
        const std::vector<float> got = c.run(*t), want = c.run(ref);
        std::vector<float> bound(group * head_dim, 1e-5f * c.max_abs_v);
        bound.push_back(0.f);  // out[group * head_dim] must stay untouched
        expect_close(*t, "attend", got, want, bound, group * head_dim + 1);
      }
    }
  }
}

namespace {

struct F16Matrix {
  size_t rows, cols;
  std::vector<f16_t> w;
  std::vector<float> x;
  F16Matrix(size_t r, size_t c, std::mt19937& rng) : rows(r), cols(c) {
    w = to_f16(normal_floats(r * c, 0.05f, rng));
    x = normal_floats(c, 3.f, rng);
  }
  // sum_k |W[r][k] x[k]| for every row: the scale of each dot product's rounding error.
  std::vector<float> abs_dots() const {
    std::vector<float> s(rows, 0.f);
    for (size_t r = 0; r < rows; ++r)
      for (size_t c = 0; c < cols; ++c) s[r] += std::fabs(f16_to_f32_scalar(w[r * cols + c]) * x[c]);
    return s;
  }
};

struct I8Matrix {
  size_t rows, cols_padded;
  std::vector<int8_t> w, q;
  std::vector<float> row_scale;
  float x_inv_scale;
  I8Matrix(size_t r, size_t cp, std::mt19937& rng) : rows(r), cols_padded(cp) {
    w = random_i8(r * cp, rng);
    q = random_i8(cp, rng);
    row_scale = normal_floats(r, 0.01f, rng);
    x_inv_scale = 1.f / 37.3f;
  }
};

}  // namespace

// A dot product of K terms summed in any order is within about sqrt(K) u
// sum_k |w_k x_k| of the exact value for random data ((K - 1) u at worst);
// the bound is 4 sqrt(K) u sum|w x|.
TEST_CASE(matvec_f16_matches_scalar_within_summation_error) {
  std::mt19937 rng(18);
  const KernelTable& ref = scalar_kernels();
  for (const KernelTable* t : check::simd_tables()) {
    for (size_t rows : {size_t{1}, size_t{7}, size_t{8}, size_t{9}, size_t{65}, size_t{130}}) {
      for (size_t cols : {size_t{1}, size_t{15}, size_t{16}, size_t{17}, size_t{100}, size_t{2560}}) {
        const F16Matrix m(rows, cols, rng);
        const std::vector<float> scale = m.abs_dots();
        std::vector<float> bound(rows + 2, 0.f);
        for (size_t r = 0; r < rows; ++r) bound[r + 1] = 4.f * std::sqrt(float(cols)) * kUnit * scale[r];
        // Whole range, and rows [1, rows - 1) with sentinels on both sides.
        for (size_t r0 : {size_t{0}, size_t{1}}) {
          const size_t r1 = r0 == 0 ? rows : std::max<size_t>(1, rows - 1);
          std::vector<float> got(rows + 2, 6.f), want(rows + 2, 6.f);
          t->matvec_f16(m.w.data(), cols, m.x.data(), got.data() + 1, r0, r1);
          ref.matvec_f16(m.w.data(), cols, m.x.data(), want.data() + 1, r0, r1);
          expect_close(*t, "matvec_f16", got, want, bound, rows + 2);
        }
      }
    }
  }
}

TEST_CASE(matvec_i8_is_bit_identical_including_extreme_values) {
  std::mt19937 rng(19);
  const KernelTable& ref = scalar_kernels();
  for (const KernelTable* t : check::simd_tables()) {
    for (size_t rows : {size_t{1}, size_t{7}, size_t{8}, size_t{9}, size_t{65}, size_t{130}}) {
      for (size_t cols_padded : {size_t{64}, size_t{128}, size_t{2560}}) {
        I8Matrix m(rows, cols_padded, rng);
        for (int variant = 0; variant < 3; ++variant) {
          if (variant == 1) {  // largest magnitudes: -128 * -128 everywhere in row 0
            std::fill(m.w.begin(), m.w.begin() + cols_padded, int8_t{-128});
            std::fill(m.q.begin(), m.q.end(), int8_t{-128});
          } else if (variant == 2) {  // +127 against -128
            std::fill(m.w.begin(), m.w.begin() + cols_padded, int8_t{127});
          }
          for (size_t r0 : {size_t{0}, size_t{1}}) {
            const size_t r1 = r0 == 0 ? rows : std::max<size_t>(1, rows - 1);
            std::vector<float> got(rows + 2, 6.f), want(rows + 2, 6.f);
            t->matvec_i8(m.w.data(), cols_padded, m.q.data(), m.row_scale.data(), m.x_inv_scale,
                         got.data() + 1, r0, r1);
            ref.matvec_i8(m.w.data(), cols_padded, m.q.data(), m.row_scale.data(), m.x_inv_scale,
                          want.data() + 1, r0, r1);
            expect_identical(*t, "matvec_i8", got, want, rows + 2);
          }
        }
      }
    }
  }
}

TEST_CASE(stream_read_sums_every_word_for_every_prefetch_and_table) {
  std::mt19937_64 rng(21);
  std::vector<uint64_t> words(1 + 40000 / 8);
  for (auto& w : words) w = rng();
  const std::vector<const KernelTable*> tables = check::runnable_tables();
  const uint8_t* data = reinterpret_cast<const uint8_t*>(words.data() + 1);
  // One line, lengths around the vector widths and the prefetch distances (4
  // and 16 KB), from 8 bytes into the buffer: loads need no alignment.
  for (size_t bytes : {size_t{64}, size_t{128}, size_t{192}, size_t{4096}, size_t{4160}, size_t{16448},
                       size_t{40000 / 64 * 64}}) {
    uint64_t want = 0;
    for (size_t i = 0; i < bytes / 8; ++i) want += words[1 + i];
    for (const KernelTable* t : tables)
      for (const ReadPrefetch how : kReadPrefetches) CHECK_EQ(t->stream_read(data, bytes, how), want);
  }
}

// measure_off_cpu: one entry per thread of the pool (each watched at once),
// with a share of the time in [0, 1] and medians taken from actual gaps.
TEST_CASE(measure_off_cpu_reports_every_thread_of_the_pool) {
  for (size_t threads : {size_t{1}, size_t{3}}) {
    ThreadPool pool(threads);
    const std::vector<OffCpu> result = measure_off_cpu(Runtime{&active_kernels(), &pool}, 0.02);
    CHECK_EQ(result.size(), threads);
    for (const OffCpu& o : result) {
      CHECK(o.fraction >= 0 && o.fraction <= 1);
      CHECK(o.gaps == 0 ? o.median_gap == 0 : o.median_gap > kOffCpuGapSeconds);
      CHECK(o.gaps < 2 ? o.median_period == 0 : o.median_period > 0);
    }
  }
}

// ops.h splits rows and heads over the pool; every table must give the same
// bytes for every pool size.
TEST_CASE(ops_are_byte_identical_for_any_thread_count) {
  std::mt19937 rng(20);
  const size_t n_heads = 20, n_kv_heads = 5, head_dim = 128, t_len = 77;
  const std::vector<float> q = normal_floats(n_heads * head_dim, 2.f, rng);
  const std::vector<f16_t> k = to_f16(normal_floats(t_len * n_kv_heads * head_dim, 1.5f, rng));
  const std::vector<f16_t> v = to_f16(normal_floats(t_len * n_kv_heads * head_dim, 1.f, rng));
  const F16Matrix mf(1000, 2560, rng);
  const I8Matrix mi(1000, 2560, rng);

  const std::vector<const KernelTable*> tables = check::runnable_tables();
  for (const KernelTable* t : tables) {
    std::vector<float> att1, f161, i81;
    for (size_t threads : {size_t{1}, size_t{2}, size_t{3}, size_t{8}}) {
      ThreadPool pool(threads);
      const Runtime rt{t, &pool};
      AlignedBuffer scratch;
      std::vector<float> att(n_heads * head_dim), f16(mf.rows), i8(mi.rows);
      attention(rt, q.data(), k.data(), v.data(), {n_kv_heads * head_dim, head_dim}, t_len, n_heads, n_kv_heads,
                head_dim, att.data(), scratch);
      matvec_f16(rt, mf.w.data(), mf.rows, mf.cols, mf.x.data(), f16.data());
      matvec_i8(rt, mi.w.data(), mi.rows, mi.cols_padded, mi.q.data(), mi.row_scale.data(), mi.x_inv_scale,
                i8.data());
      if (threads == 1) {
        att1 = att;
        f161 = f16;
        i81 = i8;
      } else {
        expect_identical(*t, "attention threads", att, att1, att.size());
        expect_identical(*t, "matvec_f16 threads", f16, f161, f16.size());
        expect_identical(*t, "matvec_i8 threads", i8, i81, i8.size());
      }
    }
  }
}

// The session's head-major cache (each head's positions one run, room for
// more positions than are filled) must give the bytes the position-major
// layout gives: only the addresses of the rows differ.
TEST_CASE(attention_is_byte_identical_for_either_cache_layout) {
  std::mt19937 rng(21);
  const size_t n_heads = 20, n_kv_heads = 5, head_dim = 128, t_len = 45, capacity = 64;
  const std::vector<float> q = normal_floats(n_heads * head_dim, 2.f, rng);
  const std::vector<f16_t> k = to_f16(normal_floats(t_len * n_kv_heads * head_dim, 1.5f, rng));
  const std::vector<f16_t> v = to_f16(normal_floats(t_len * n_kv_heads * head_dim, 1.f, rng));
  const KvCacheLayout by_position = {n_kv_heads * head_dim, head_dim};
  const KvCacheLayout by_head = {head_dim, capacity * head_dim};
  std::vector<f16_t> k_heads(n_kv_heads * capacity * head_dim, 0x7E00), v_heads(k_heads);  // NaN where unfilled
  for (size_t j = 0; j < n_kv_heads; ++j)
    for (size_t t = 0; t < t_len; ++t)
      for (size_t e = 0; e < head_dim; ++e) {
        const size_t from = j * by_position.head_stride + t * by_position.position_stride + e;
        const size_t to = j * by_head.head_stride + t * by_head.position_stride + e;
        k_heads[to] = k[from];
        v_heads[to] = v[from];
      }
  const std::vector<const KernelTable*> tables = check::runnable_tables();
  for (const KernelTable* t : tables) {
    ThreadPool pool(2);
    const Runtime rt{t, &pool};
    AlignedBuffer scratch;
    std::vector<float> want(n_heads * head_dim), got(want.size());
    attention(rt, q.data(), k.data(), v.data(), by_position, t_len, n_heads, n_kv_heads, head_dim, want.data(),
              scratch);
    attention(rt, q.data(), k_heads.data(), v_heads.data(), by_head, t_len, n_heads, n_kv_heads, head_dim,
              got.data(), scratch);
    expect_identical(*t, "attention layouts", got, want, want.size());
  }
}

TEST_MAIN
