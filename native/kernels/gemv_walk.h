// The step loop that every ISA's ternary GEMV shares (GemvWalk, kernel_table.h):
// an ISA supplies the sums of one quad of tiles of one chunk, and how it
// builds a chunk's tables.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernel_table.h"
#include "stream_prefetch.h"

namespace bitnet {

// Calls quad(c, t) for steps [begin, walk.end): chunk c, the quad of tiles
// starting at tile t. A walk is one forward stream, so it starts with the
// stream's first prefetches.
template <class Quad>
void for_each_step(const TernaryView& w, size_t begin, GemvWalk& walk, Quad&& quad) {
  const size_t quads = w.quads();
  size_t c = begin / quads, t = begin % quads * kQuadTiles;
  prefetch_stream_start(w.quad(c, t));
  for (size_t s = begin; s < walk.end; ++s) {
    quad(c, t);
    if ((t += kQuadTiles) >= w.row_tiles()) {
      t = 0;
      ++c;
    }
    walk.after_step(s + 1);
  }
}

// A ternary GEMV's two entries made of an ISA's table builder and quad sums
// (kQuad(w, tables, c, t, sums) adds chunk c's dot products of the quad at
// tile t). The build entry builds each chunk's tables right before its first
// step, so that the build runs while the lines the previous steps prefetched
// arrive.
template <void (*kPrepare)(const int8_t*, size_t, size_t, uint8_t*),
          void (*kQuad)(const TernaryView&, const uint8_t*, size_t, size_t, int32_t*)>
struct QuadGemv {
  static void steps(const TernaryView& w, const uint8_t* tables, size_t begin, GemvWalk& walk, int32_t* sums) {
    for_each_step(w, begin, walk, [&](size_t c, size_t t) { kQuad(w, tables, c, t, sums); });
  }
  static void build_steps(const TernaryView& w, const int8_t* q, size_t begin, GemvWalk& walk, uint8_t* tables,
                          int32_t* sums) {
    size_t built = SIZE_MAX;
    for_each_step(w, begin, walk, [&](size_t c, size_t t) {
      if (c != built) kPrepare(q, c, c + 1, tables);
      built = c;
      kQuad(w, tables, c, t, sums);
    });
  }
};

}  // namespace bitnet
