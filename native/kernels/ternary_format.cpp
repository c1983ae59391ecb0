#include "ternary_format.h"

#include <cstring>

namespace bitnet {

namespace {
// Byte offset of the plane byte holding (row, col) and the bit inside it.
struct BitPos {
  size_t byte0;  // offset of the bit0 byte; the bit1 byte is kPlaneBytes later
  unsigned bit;
};
inline BitPos locate(const TernaryView& v, size_t row, size_t col) {
  const size_t chunk = col / kChunkCols, tile = row / kRowTile;
  const size_t group = (col % kChunkCols) / kGroupCols;
  const size_t off = static_cast<size_t>(v.block(chunk, tile).group(group) - v.planes) + row % kRowTile;
  return {off, static_cast<unsigned>(col % kGroupCols)};
}
}  // namespace

bool pack_ternary(const int8_t* w, size_t rows, size_t cols, uint8_t* out) {
  TernaryView v{out, rows, cols};
  std::memset(out, 0, packed_bytes(rows, cols));
  for (size_t r = 0; r < rows; ++r) {
    for (size_t c = 0; c < cols; ++c) {
      const int8_t x = w[r * cols + c];
      if (x == 0) continue;
      if (x != 1 && x != -1) return false;
      const BitPos p = locate(v, r, c);
      out[p.byte0 + (x == 1 ? 0 : kPlaneBytes)] |= static_cast<uint8_t>(1u << p.bit);
    }
  }
  return true;
}

void unpack_ternary(const TernaryView& v, int8_t* w) {
  for (size_t r = 0; r < v.rows; ++r) {
    for (size_t c = 0; c < v.cols; ++c) {
      const BitPos p = locate(v, r, c);
      const int plus = (v.planes[p.byte0] >> p.bit) & 1;
      const int minus = (v.planes[p.byte0 + kPlaneBytes] >> p.bit) & 1;
      w[r * v.cols + c] = static_cast<int8_t>(plus - minus);
    }
  }
}

namespace {

// The first invalid weight of one block, checked byte by byte.
InvalidWeight scan_block(const TernaryView& v, size_t chunk, size_t tile) {
  const BlockPlanes blk = v.block(chunk, tile);
  for (size_t g = 0; g < kChunkGroups; ++g) {
    for (size_t r = 0; r < kRowTile; ++r) {
      const uint8_t b0 = blk.group(g)[r], b1 = blk.group(g)[kPlaneBytes + r];
      const size_t row = tile * kRowTile + r, col0 = chunk * kChunkCols + g * kGroupCols;
      // Columns of this byte that lie in the padding must be zero in both planes.
      unsigned pad_mask = 0;
      if (row >= v.rows) pad_mask = 0xFF;
      else if (col0 + kGroupCols > v.cols)
        pad_mask = col0 >= v.cols ? 0xFF : (0xFFu << (v.cols - col0)) & 0xFF;
      const unsigned bad = (b0 & b1) | ((b0 | b1) & pad_mask);
      if (bad) {
        unsigned bit = 0;
        while (!((bad >> bit) & 1)) ++bit;
        return {true, row, col0 + bit};
      }
    }
  }
  return {};
}

// Whether any weight of an interior block (no padding) has both plane bits set:
// a word-wide AND that the compiler vectorizes, so validating a 2B model at
// load time costs about one read of its planes.
bool block_has_overlap(const BlockPlanes& blk) {
  uint64_t overlap = 0;
  for (size_t g = 0; g < kChunkGroups; ++g) {
    for (size_t i = 0; i < kPlaneBytes; i += 8) {
      uint64_t plus, minus;
      std::memcpy(&plus, blk.group(g) + i, 8);
      std::memcpy(&minus, blk.group(g) + kPlaneBytes + i, 8);
      overlap |= plus & minus;
    }
  }
  return overlap != 0;
}

}  // namespace

InvalidWeight find_invalid_ternary(const TernaryView& v) {
  for (size_t chunk = 0; chunk < v.chunks(); ++chunk) {
    const bool edge_chunk = (chunk + 1) * kChunkCols > v.cols;
    for (size_t tile = 0; tile < v.row_tiles(); ++tile) {
      const bool edge = edge_chunk || (tile + 1) * kRowTile > v.rows;
      if (!edge && !block_has_overlap(v.block(chunk, tile))) continue;
      const InvalidWeight bad = scan_block(v, chunk, tile);
      if (bad.found) return bad;
    }
  }
  return {};
}

}  // namespace bitnet
