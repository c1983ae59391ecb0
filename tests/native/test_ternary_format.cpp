#include <cstring>
#include <vector>

#include "check.h"
#include "ternary_format.h"

using namespace bitnet;

namespace {
struct Packed {
  std::vector<uint8_t> bytes;
  TernaryView view;
};
Packed pack(const std::vector<int8_t>& w, size_t rows, size_t cols) {
  Packed p;
  p.bytes.resize(packed_bytes(rows, cols));
  const bool ok = pack_ternary(w.data(), rows, cols, p.bytes.data());
  p.view = TernaryView{p.bytes.data(), rows, cols};
  if (!ok) p.bytes.clear();
  return p;
}
std::vector<int8_t> random_ternary(size_t n, std::mt19937& rng) {
  std::vector<int8_t> w(n);
  for (auto& x : w) x = static_cast<int8_t>(static_cast<int>(rng() % 3) - 1);
  return w;
}
}  // namespace

TEST_CASE(pack_unpack_round_trip_on_ragged_shapes) {
  std::mt19937 rng(1);
  const size_t shapes[][2] = {{1, 1}, {3, 7}, {64, 128}, {65, 129}, {130, 300}, {640, 2560}};
  for (const auto& s : shapes) {
    const auto w = random_ternary(s[0] * s[1], rng);
    Packed p = pack(w, s[0], s[1]);
    CHECK(!p.bytes.empty());
    std::vector<int8_t> back(w.size());
    unpack_ternary(p.view, back.data());
    CHECK(back == w);
    CHECK(!find_invalid_ternary(p.view).found);
  }
}

TEST_CASE(packed_size_is_two_bits_per_padded_weight) {
  CHECK_EQ(packed_bytes(2560, 2560), size_t{2560 * 2560 / 4});
  CHECK_EQ(packed_bytes(1, 1), size_t{64 * 128 / 4});
  CHECK_EQ(packed_bytes(65, 129), size_t{128 * 256 / 4});
}

TEST_CASE(bit_positions_follow_the_documented_layout) {
  // W[70][135] = +1, W[3][9] = -1 in a 130 x 300 matrix (3 row tiles: one quad
  // of 3 tiles per chunk; 3 chunks). Offsets spelled out from docs/weight-format.md:
  // chunk c starts at c * row_tiles * 2048; in a quad of n tiles, group g of its
  // tile i starts (g * n + i) * 128 bytes after the quad, bit1 64 bytes later.
  std::vector<int8_t> w(130 * 300, 0);
  w[70 * 300 + 135] = 1;
  w[3 * 300 + 9] = -1;
  Packed p = pack(w, 130, 300);
  // (70, 135): chunk 1, tile 1, group (135-128)/8 = 0, row 70-64 = 6, bit 7, plane bit0.
  CHECK_EQ(int{p.bytes[1 * 3 * 2048 + (0 * 3 + 1) * 128 + 6]}, 0x80);
  // (3, 9): chunk 0, tile 0, group 1, row 3, bit 1, plane bit1.
  CHECK_EQ(int{p.bytes[(1 * 3 + 0) * 128 + 64 + 3]}, 0x02);
  size_t set = 0;
  for (uint8_t b : p.bytes) set += __builtin_popcount(b);
  CHECK_EQ(set, size_t{2});

  // 5 row tiles: a full quad, then a quad of one tile.
  std::vector<int8_t> v(320 * 128, 0);
  v[130 * 128 + 10] = 1;   // tile 2 (quad 0, n = 4), group 1, row 2, bit 2
  v[300 * 128 + 10] = -1;  // tile 4 (quad 1, n = 1), group 1, row 44, bit 2, plane bit1
  Packed q = pack(v, 320, 128);
  CHECK_EQ(int{q.bytes[(1 * 4 + 2) * 128 + 2]}, 0x04);
  CHECK_EQ(int{q.bytes[4 * 2048 + (1 * 1 + 0) * 128 + 64 + 44]}, 0x04);
}

TEST_CASE(rejects_values_outside_minus_one_to_one) {
  std::vector<int8_t> w(4 * 4, 0);
  w[5] = 2;
  std::vector<uint8_t> out(packed_bytes(4, 4));
  CHECK(!pack_ternary(w.data(), 4, 4, out.data()));
}

TEST_CASE(finds_both_bits_set_and_dirty_padding) {
  std::vector<int8_t> w(10 * 20, 0);
  Packed p = pack(w, 10, 20);
  // Both planes set at (2, 17): chunk 0 tile 0 group 2 row 2 bit 1.
  p.bytes[2 * kGroupBytes + 2] |= 0x02;
  p.bytes[2 * kGroupBytes + kPlaneBytes + 2] |= 0x02;
  const InvalidWeight both = find_invalid_ternary(p.view);
  CHECK(both.found);
  CHECK_EQ(both.row, size_t{2});
  CHECK_EQ(both.col, size_t{17});
  Packed q = pack(w, 10, 20);
  q.bytes[2 * kGroupBytes + 5] |= 0x10;  // column 20: beyond cols
  const InvalidWeight col_pad = find_invalid_ternary(q.view);
  CHECK(col_pad.found);
  CHECK_EQ(col_pad.row, size_t{5});
  CHECK_EQ(col_pad.col, size_t{20});
  Packed r = pack(w, 10, 20);
  r.bytes[12] |= 0x01;  // row 12: beyond rows
  const InvalidWeight row_pad = find_invalid_ternary(r.view);
  CHECK(row_pad.found);
  CHECK_EQ(row_pad.row, size_t{12});
  CHECK_EQ(row_pad.col, size_t{0});
}

TEST_CASE(finds_both_bits_set_inside_a_full_block) {
  // 128 x 256: every block is interior (no padding), the word-wide fast path.
  std::vector<int8_t> w(128 * 256, 1);
  Packed p = pack(w, 128, 256);
  CHECK(!find_invalid_ternary(p.view).found);
  // (100, 200): chunk 1, tile 1 of a 2-tile quad, group (200-128)/8 = 9, row 36, bit 0;
  // set the minus bit too.
  p.bytes[1 * 2 * kBlockBytes + (9 * 2 + 1) * kGroupBytes + kPlaneBytes + 36] |= 0x01;
  const InvalidWeight bad = find_invalid_ternary(p.view);
  CHECK(bad.found);
  CHECK_EQ(bad.row, size_t{100});
  CHECK_EQ(bad.col, size_t{200});
}

TEST_MAIN
