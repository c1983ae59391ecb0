// The bit-plane ("Rotor") layout of a ternary matrix, shared by every kernel,
// the model-file writer and the N-API layer. docs/weight-format.md draws it.
//
// A logical matrix W[N][K] with w in {-1, 0, +1} (N output rows, K inputs) is
// stored as two bit planes: bit0 = (w == +1), bit1 = (w == -1). Both set is
// invalid. The planes are cut into blocks of kRowTile rows x kChunkCols columns,
// stored chunk-major (all row tiles of columns [0,128), then [128,256), ...),
// so that a GEMV walks one 128-column chunk across every row tile while that
// chunk's lookup tables stay in L1, and a GEMM expands one block to int8 at a
// time. A block is 16 groups of 8 columns, each 64 bytes of bit0 (byte r = row
// r of the tile) then 64 bytes of bit1; bit i of a byte is column chunk*128 +
// group*8 + i. Within a chunk, tiles come in quads of kQuadTiles (the last one
// may be shorter) whose groups are interleaved: group 0 of each tile of the
// quad, then group 1 of each, ... So a GEMV that steps through a quad's tiles
// group by group reads one forward run of memory. Padding rows and columns
// hold zero bits (w = 0).
#pragma once
#include <algorithm>
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
constexpr size_t kQuadTiles = 4;      // tiles whose groups are interleaved
constexpr size_t kWeightAlign = 64;   // plane data must start on a cache line

inline size_t round_up(size_t v, size_t m) { return (v + m - 1) / m * m; }

// Where the groups of one block (one tile, one chunk) lie: group g's bit0
// plane at group(g), its bit1 plane kPlaneBytes later.
struct BlockPlanes {
  const uint8_t* first;  // group 0's bit0 plane
  size_t stride;         // bytes from one group to the next: tiles in the quad * kGroupBytes
  const uint8_t* group(size_t g) const { return first + g * stride; }
};

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
  // Quads of tiles per chunk: a GEMV walks chunks() * quads() steps (GemvWalk).
  size_t quads() const { return (row_tiles() + kQuadTiles - 1) / kQuadTiles; }
  // Tiles in the quad that holds `tile` (kQuadTiles except for a chunk's last quad).
  size_t quad_tiles(size_t tile) const {
    return std::min(kQuadTiles, row_tiles() - tile / kQuadTiles * kQuadTiles);
  }
  // First byte of the quad that holds `tile` in `chunk`; the quad takes
  // quad_tiles(tile) * kBlockBytes bytes, and chunk c + 1 follows chunk c.
  const uint8_t* quad(size_t chunk, size_t tile) const {
    return planes + (chunk * row_tiles() + tile / kQuadTiles * kQuadTiles) * kBlockBytes;
  }
  BlockPlanes block(size_t chunk, size_t tile) const {
    return {quad(chunk, tile) + tile % kQuadTiles * kGroupBytes, quad_tiles(tile) * kGroupBytes};
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
