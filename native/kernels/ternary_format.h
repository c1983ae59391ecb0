// The bit-plane ("Rotor") layout of a ternary matrix, shared by every kernel,
// the model-file writer and the N-API layer. docs/weight-format.md draws it.
//
// A logical matrix W[N][K] with w in {-1, 0, +1} (N output rows, K inputs) is
// stored as two bit planes: bit0 = (w == +1), bit1 = (w == -1). Both set is
// invalid. The planes are cut into blocks of kRowTile rows x kChunkCols columns,
// stored chunk-major (all row tiles of columns [0,128), then [128,256), ...),
// so that a GEMV walks one 128-column chunk across every row tile while that
// chunk's lookup tables stay in L1, and a GEMM expands one block to int8 at a
// time. Inside a block, for each group of 8 columns: 64 bytes of bit0 (byte r
// = row r of the tile), then 64 bytes of bit1. Bit i of a byte is column
// chunk*128 + group*8 + i. Padding rows and columns hold zero bits (w = 0).
#pragma once
#include <cstddef>
#include <cstdint>

namespace bitnet {

constexpr size_t kRowTile = 64;       // rows per tile: one zmm of plane bytes
constexpr size_t kGroupCols = 8;      // columns per plane byte
constexpr size_t kChunkGroups = 16;   // groups per chunk; 16 * 8 * 128 < 2^15 keeps
                                      // per-chunk int16 partial sums exact
constexpr size_t kChunkCols = kGroupCols * kChunkGroups;          // 128
constexpr size_t kPlaneBytes = kRowTile;                           // one plane of one group
constexpr size_t kGroupBytes = 2 * kPlaneBytes;                    // bit0 then bit1
constexpr size_t kBlockBytes = kChunkGroups * kGroupBytes;         // 2048
constexpr size_t kWeightAlign = 64;   // plane data must start on a cache line

inline size_t round_up(size_t v, size_t m) { return (v + m - 1) / m * m; }

// A read-only view of one packed ternary matrix; the bytes are owned elsewhere
// (a model file mapping or a JS ArrayBuffer).
struct TernaryView {
  const uint8_t* planes = nullptr;  // packed_bytes(rows, cols) bytes, kWeightAlign-aligned
  size_t rows = 0;                  // N, logical
  size_t cols = 0;                  // K, logical

  size_t row_tiles() const { return (rows + kRowTile - 1) / kRowTile; }
  size_t chunks() const { return (cols + kChunkCols - 1) / kChunkCols; }
  size_t padded_rows() const { return row_tiles() * kRowTile; }
  size_t padded_cols() const { return chunks() * kChunkCols; }
  const uint8_t* block(size_t chunk, size_t tile) const {
    return planes + (chunk * row_tiles() + tile) * kBlockBytes;
  }
};

inline size_t packed_bytes(size_t rows, size_t cols) {
  return round_up(rows, kRowTile) * round_up(cols, kChunkCols) / 4;
}

// Packs a row-major int8 matrix of {-1,0,+1} into the layout above.
// Returns false (and writes nothing meaningful) if any value is outside {-1,0,1}.
bool pack_ternary(const int8_t* w, size_t rows, size_t cols, uint8_t* out);

// Inverse of pack_ternary, for tests and converters.
void unpack_ternary(const TernaryView& v, int8_t* w);

// Where a packed matrix breaks the format: a weight with both plane bits set,
// or a set bit in the padding (then row >= rows or col >= cols).
struct InvalidWeight {
  bool found = false;
  size_t row = 0, col = 0;
};
InvalidWeight find_invalid_ternary(const TernaryView& v);

}  // namespace bitnet
