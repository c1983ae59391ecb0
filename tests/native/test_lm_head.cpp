// The 4-bit LM head: matvec_q4 of every ISA against the scalar reference
// (bit for bit: integer sums are exact), its packing checked against plain
// int8 weights, and top_k against a full sort, for every thread count.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "check.h"
#include "kernel_table.h"
#include "ops.h"

using namespace bitnet;

namespace {

// Random 4-bit weights in [-8, 7], kept unpacked too so the packing can be checked.
struct Q4Matrix {
  size_t rows, cols_padded;
  std::vector<int8_t> weights;  // [rows][cols_padded], -8..7
  std::vector<uint8_t> packed;  // matvec_q4 layout
  std::vector<int8_t> q;
  std::vector<float> row_scale;
  float x_inv_scale = 1.f / 41.7f;

  Q4Matrix(size_t r, size_t cp, std::mt19937& rng) : rows(r), cols_padded(cp) {
    std::uniform_int_distribution<int> w4(-8, 7), i8(-128, 127);
    std::normal_distribution<float> scale(0.f, 0.02f);
    weights.resize(r * cp);
    for (auto& w : weights) w = static_cast<int8_t>(w4(rng));
    q.resize(cp);
    for (auto& v : q) v = static_cast<int8_t>(i8(rng));
    row_scale.resize(r);
    for (auto& s : row_scale) s = scale(rng);
    pack();
  }

  // Byte b of block j: column 128 j + b in the low nibble, 128 j + 64 + b in the high one.
  void pack() {
    const size_t half = kQ4BlockCols / 2;
    packed.assign(rows * cols_padded / 2, 0);
    for (size_t r = 0; r < rows; ++r)
      for (size_t c = 0; c < cols_padded; ++c) {
        const uint8_t nibble = static_cast<uint8_t>(weights[r * cols_padded + c] + 8);
        uint8_t& byte = packed[r * cols_padded / 2 + c / kQ4BlockCols * half + c % half];
        byte |= c % kQ4BlockCols < half ? nibble : static_cast<uint8_t>(nibble << 4);
      }
  }
};

void expect_identical(const KernelTable& t, const std::string& what, const std::vector<float>& got,
                      const std::vector<float>& want) {
  for (size_t i = 0; i < got.size(); ++i)
    if (std::memcmp(&got[i], &want[i], sizeof(float)) != 0) {
      check::fail(__FILE__, __LINE__, std::string(t.isa_name) + " " + what + ": element " + std::to_string(i) +
                                          " differs");
      return;
    }
}

const std::vector<size_t> kRows = {1, 7, 8, 9, 65, 130};
const std::vector<size_t> kColsPadded = {128, 256, 2560};

}  // namespace

// The packed nibbles give the same integer sums as the same weights stored
// as int8 rows (matvec_i8 with the same scales).
TEST_CASE(scalar_matvec_q4_matches_int8_weights) {
  std::mt19937 rng(40);
  const KernelTable& ref = scalar_kernels();
  for (size_t cols_padded : kColsPadded) {
    const Q4Matrix m(9, cols_padded, rng);
    std::vector<float> got(m.rows), want(m.rows);
    ref.matvec_q4(m.packed.data(), cols_padded, m.q.data(), m.row_scale.data(), m.x_inv_scale, got.data(), 0, m.rows);
    ref.matvec_i8(m.weights.data(), cols_padded, m.q.data(), m.row_scale.data(), m.x_inv_scale, want.data(), 0,
                  m.rows);
    expect_identical(ref, "matvec_q4 vs int8", got, want);
  }
}

TEST_CASE(matvec_q4_is_bit_identical_including_extreme_values) {
  std::mt19937 rng(41);
  const KernelTable& ref = scalar_kernels();
  for (const KernelTable* t : check::simd_tables()) {
    for (size_t rows : kRows) {
      for (size_t cols_padded : kColsPadded) {
        Q4Matrix m(rows, cols_padded, rng);
        for (int variant = 0; variant < 3; ++variant) {
          if (variant == 1) {  // largest magnitudes: -8 * -128 everywhere in row 0
            std::fill(m.weights.begin(), m.weights.begin() + cols_padded, int8_t{-8});
            std::fill(m.q.begin(), m.q.end(), int8_t{-128});
            m.pack();
          } else if (variant == 2) {  // 7 against 127
            std::fill(m.weights.begin(), m.weights.begin() + cols_padded, int8_t{7});
            std::fill(m.q.begin(), m.q.end(), int8_t{127});
            m.pack();
          }
          // Whole range, and rows [1, rows - 1) with sentinels on both sides.
          for (size_t r0 : {size_t{0}, size_t{1}}) {
            const size_t r1 = r0 == 0 ? rows : std::max<size_t>(1, rows - 1);
            std::vector<float> got(rows + 2, 6.f), want(rows + 2, 6.f);
            t->matvec_q4(m.packed.data(), cols_padded, m.q.data(), m.row_scale.data(), m.x_inv_scale,
                         got.data() + 1, r0, r1);
            ref.matvec_q4(m.packed.data(), cols_padded, m.q.data(), m.row_scale.data(), m.x_inv_scale,
                          want.data() + 1, r0, r1);
            expect_identical(*t, "matvec_q4 (variant " + std::to_string(variant) + ")", got, want);
          }
        }
      }
    }
  }
}

TEST_CASE(matvec_q4_and_top_k_are_identical_for_any_thread_count) {
  std::mt19937 rng(42);
  const Q4Matrix m(1000, 2560, rng);
  const std::vector<const KernelTable*> tables = check::runnable_tables();
  for (const KernelTable* t : tables) {
    std::vector<float> y1;
    std::vector<uint32_t> top1;
    for (size_t threads : {size_t{1}, size_t{2}, size_t{3}, size_t{8}}) {
      ThreadPool pool(threads);
      const Runtime rt{t, &pool};
      AlignedBuffer scratch;
      std::vector<float> y(m.rows);
      matvec_q4(rt, m.packed.data(), m.rows, m.cols_padded, m.q.data(), m.row_scale.data(), m.x_inv_scale, y.data());
      std::vector<uint32_t> top(64);
      top_k(rt, y.data(), y.size(), top.size(), top.data(), scratch);
      if (threads == 1) {
        y1 = y;
        top1 = top;
      } else {
        expect_identical(*t, "matvec_q4 threads", y, y1);
        CHECK(top == top1);
      }
    }
  }
}

// top_k against a stable sort, with ties, infinities and several pieces
// (the 2B4T vocabulary is 128256 values), for k from 1 to n.
TEST_CASE(top_k_matches_a_stable_sort) {
  std::mt19937 rng(43);
  for (size_t n : {size_t{1}, size_t{5}, size_t{64}, size_t{8193}, size_t{128256}}) {
    std::vector<float> values(n);
    std::uniform_int_distribution<int> coarse(-50, 50);  // many equal values
    for (auto& v : values) v = static_cast<float>(coarse(rng)) * 0.25f;
    values[n / 2] = INFINITY;
    values[n - 1] = -INFINITY;
    std::vector<uint32_t> order(n);
    std::iota(order.begin(), order.end(), 0u);
    std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return values[a] > values[b]; });
    for (size_t k : {size_t{1}, size_t{3}, size_t{64}, std::min(n, size_t{8193})}) {
      if (k > n) continue;
      for (size_t threads : {size_t{1}, size_t{3}}) {
        ThreadPool pool(threads);
        const Runtime rt{&scalar_kernels(), &pool};
        AlignedBuffer scratch;
        std::vector<uint32_t> top(k);
        top_k(rt, values.data(), n, k, top.data(), scratch);
        CHECK(std::equal(top.begin(), top.end(), order.begin()));
      }
    }
  }
}

TEST_MAIN
