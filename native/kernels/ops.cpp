#include "ops.h"

#include "stream_prefetch.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <functional>
#include <new>

namespace bitnet {

uint8_t* AlignedBuffer::reserve(size_t bytes) {
  if (bytes > size_) {
    const size_t rounded = round_up(bytes, kStreamPageBytes);
    void* p = std::aligned_alloc(kStreamPageBytes, rounded);
    if (!p) throw std::bad_alloc();
    data_.reset(static_cast<uint8_t*>(p));
    size_ = rounded;
  }
  return data_.get();
}

float quantize_activations(const KernelTable& k, const float* x, size_t n, int8_t* q,
                           size_t padded_len) {
  const float s = 127.f / std::max(k.absmax(x, n), 1e-5f);
  k.quantize_i8(x, n, s, q);
  std::memset(q + n, 0, padded_len - n);
  return s;
}

namespace {

// Calls fn(target, base, t0, t1) for the pieces of the global tile range
// [begin, end) where the targets' tiles are numbered one after another, the
// target's first tile being global tile `base`.
template <class Fn>
void for_tiles(const TernaryTarget* targets, size_t n_targets, size_t begin, size_t end, Fn&& fn) {
  size_t base = 0;
  for (size_t i = 0; i < n_targets && base < end; ++i) {
    const size_t tiles = targets[i].w.row_tiles();
    const size_t lo = std::max(begin, base), hi = std::min(end, base + tiles);
    if (lo < hi) fn(targets[i], base, lo - base, hi - base);
    base += tiles;
  }
}

// A prefill tile is 50-500 us of work on its own.
constexpr size_t kGemmTilesPerPiece = 2;

size_t total_tiles(const TernaryTarget* targets, size_t n_targets) {
  size_t n = 0;
  for (size_t i = 0; i < n_targets; ++i) n += targets[i].w.row_tiles();
  return n;
}

// y[r] = (sum over parts p of first[p * part_stride + r]) * scale for r <
// rows, in one pass, a tile at a time with fixed-length loops (the parts hold
// padded rows). Cloned per x86 ISA level: with AVX-512 it takes ~0.2 us for
// 2560 rows of two parts in cache, against ~0.65 us for the baseline build's
// SSE2 with a memcpy per tile. Integer sums and one float multiply: the same
// bits from every clone. Clones are resolved through ELF ifuncs, hence Linux
// only.
#if defined(__x86_64__) && defined(__linux__)
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#endif
void sum_parts_scaled(const int32_t* first, size_t part_stride, size_t n_parts, size_t rows, float scale,
                      float* y) {
  for (size_t b = 0; b < rows; b += kRowTile) {
    int32_t total[kRowTile] = {};
    for (size_t p = 0; p < n_parts; ++p) {
      const int32_t* part = first + p * part_stride + b;
      for (size_t r = 0; r < kRowTile; ++r) total[r] += part[r];
    }
    const size_t n = std::min(kRowTile, rows - b);
    for (size_t r = 0; r < n; ++r) y[b + r] = static_cast<float>(total[r]) * scale;
  }
}

// --- One GEMV call's pieces ---------------------------------------------------
//
// Piece p owns the column chunks [c0, c1) of every target: in target i the
// steps [c0 * quads_i, c1 * quads_i) (GemvWalk), one contiguous run of memory
// (the layout is chunk-major). Its "sequence" is those runs of all targets one
// after another. A piece that has walked its own sequence asks another piece
// for the tail of that one's: the owner grants it after its current step, and
// the thief adds what it walks to its own sums. Rows are "global": the padded
// rows of all targets one after another.

// Steps a thief walks while a grant reaches it and it builds the tables (~0.5 us).
constexpr size_t kStealStartSteps = 2;
// The fewest steps worth granting: 16 KB.
constexpr size_t kMinStolenSteps = 2;

// StealBox::state: asked by a thief, answered by the owner after its next step.
enum StealState : uint32_t { kStealOpen, kStealAsked, kStealGranted, kStealClosed };

// Each line is written by one thread at a time and polled by others.
struct alignas(64) StealBox {
  std::atomic<uint32_t> state;
  size_t begin, end;  // the granted steps of the owner's sequence, once granted
};
struct alignas(64) PieceControl {
  std::atomic<bool> started;
  StealBox box;
};
struct alignas(64) Finished {
  std::atomic<size_t> pieces;  // walked, with what they took from others
  alignas(64) std::atomic<size_t> next_slice;  // of the rows to add up
};

struct GemvCall {
  const KernelTable& k;
  const int8_t* q;
  const TernaryTarget* targets;
  size_t n_targets, chunks, pieces;
  PieceControl* control;
  Finished* finished;
  uint8_t* buffers;  // per piece: tables, then sums
  size_t table_bytes, piece_bytes;

  size_t c0(size_t p) const { return chunks * p / pieces; }
  size_t c1(size_t p) const { return chunks * (p + 1) / pieces; }
  uint8_t* tables(size_t p) const { return buffers + p * piece_bytes; }
  int32_t* sums(size_t p) const { return reinterpret_cast<int32_t*>(tables(p) + table_bytes); }
  // Slices of the rows that the pieces add up. One thread's pass reads every
  // piece's sums: with 2 pieces, sharing it was no faster (2560 and 2 x 6912
  // rows, docs/kernels.md, stop 18), but the pass grows with the pieces (16
  // parts of 13824 rows: 12.5 us from this core's cache, 36 us from another
  // core's, against 2.1 and 7.4 us for 2 parts), so beyond 2 pieces each
  // piece adds up a slice. Not measured beyond 2 cores.
  size_t sum_slices() const { return pieces > 2 ? pieces : 1; }
  // Calls fn(target, sequence_base, steps, rows_before) for each target's
  // share of piece p's sequence: its steps [sequence_base, sequence_base +
  // steps) of the sequence, and the global rows before the target's.
  template <class Fn>
  void for_each_target(size_t p, Fn&& fn) const {
    size_t base = 0, rows_before = 0;
    for (size_t i = 0; i < n_targets; ++i) {
      const TernaryView& w = targets[i].w;
      const size_t steps = (c1(p) - c0(p)) * w.quads();
      fn(i, base, steps, rows_before);
      base += steps;
      rows_before += w.padded_rows();
    }
  }
  size_t sequence_steps(size_t p) const {
    size_t n = 0;
    for_each_target(p, [&](size_t, size_t, size_t steps, size_t) { n += steps; });
    return n;
  }
};

bool all_started(const GemvCall& call) {
  for (size_t p = 0; p < call.pieces; ++p)
    if (!call.control[p].started.load(std::memory_order_acquire)) return false;
  return true;
}

// One target's share of an owner's walk through its sequence; the hook's
// context, called when a thief has asked.
struct TargetWalk {
  size_t sequence_base;  // the sequence step of this target's first step
  size_t step_base;      // that step's index in the target: c0(v) * quads
  size_t& sequence_end;  // lowered when the tail is granted
  StealBox* box;

  // Grants the thief about half of what is left of the sequence, less what
  // the owner walks while the thief starts, or refuses if that is too little.
  static void answer(GemvWalk& walk, size_t done) {
    auto& self = *static_cast<TargetWalk*>(walk.context);
    walk.poll = &kNeverPolled;
    const size_t remaining = self.sequence_end - (self.sequence_base + done - self.step_base);
    const size_t give = remaining > kStealStartSteps ? (remaining - kStealStartSteps) / 2 : 0;
    if (give < kMinStolenSteps) {
      self.box->state.store(kStealClosed, std::memory_order_release);
      return;
    }
    self.box->begin = self.sequence_end - give;
    self.box->end = self.sequence_end;
    self.sequence_end -= give;
    self.box->state.store(kStealGranted, std::memory_order_release);
    walk.end = std::min(walk.end, self.step_base + (self.sequence_end - self.sequence_base));
  }
};

// Walks steps [from, to) of piece v's sequence with the given tables, adding
// to sums (global rows). The piece's own walk passes its box: a thief may be
// granted the tail (to is lowered) until the box is answered, and each chunk's
// tables are built while the first target is walked. A thief passes none and
// has built the tables it needs.
void walk_sequence(const GemvCall& call, size_t v, size_t from, size_t& to, uint8_t* tables, int32_t* sums,
                   StealBox* box) {
  call.for_each_target(v, [&](size_t i, size_t base, size_t steps, size_t rows_before) {
    // to only shrinks: a target past it is never walked.
    if (base >= to || from >= base + steps) return;
    const TernaryView& w = call.targets[i].w;
    const size_t step_base = call.c0(v) * w.quads(), begin = step_base + (std::max(from, base) - base);
    GemvWalk walk{step_base + (std::min(to, base + steps) - base)};
    TargetWalk owner{base, step_base, to, box};
    // The hook runs only when a thief has asked: one load per step.
    if (box && box->state.load(std::memory_order_acquire) < kStealGranted) {
      walk.poll = &box->state;
      walk.hook = TargetWalk::answer;
      walk.context = &owner;
    }
    int32_t* target_sums = sums + rows_before;
    if (box && i == 0) call.k.ternary_gemv_build_steps(w, call.q, begin, walk, tables, target_sums);
    else call.k.ternary_gemv_steps(w, tables, begin, walk, target_sums);
  });
}

// Asks the other pieces, one after another, for the tail of their sequence
// until one grants some, and adds it to piece p's sums.
void steal(const GemvCall& call, size_t p) {
  for (size_t i = 1; i < call.pieces; ++i) {
    const size_t v = (p + i) % call.pieces;
    StealBox& box = call.control[v].box;
    uint32_t open = kStealOpen;
    if (!box.state.compare_exchange_strong(open, kStealAsked, std::memory_order_acq_rel)) continue;
    spin_until([&] { return box.state.load(std::memory_order_acquire) != kStealAsked; });
    if (box.state.load(std::memory_order_acquire) != kStealGranted) continue;
    size_t first_chunk = call.chunks, last_chunk = 0;
    call.for_each_target(v, [&](size_t t, size_t base, size_t steps, size_t) {
      const size_t quads = call.targets[t].w.quads();
      const size_t lo = std::max(box.begin, base), hi = std::min(box.end, base + steps);
      if (lo >= hi) return;
      first_chunk = std::min(first_chunk, call.c0(v) + (lo - base) / quads);
      last_chunk = std::max(last_chunk, call.c0(v) + (hi - 1 - base) / quads);
    });
    call.k.ternary_gemv_prepare(call.q, first_chunk, last_chunk + 1, call.tables(p));
    size_t end = box.end;
    walk_sequence(call, v, box.begin, end, call.tables(p), call.sums(p), nullptr);
    return;
  }
}

// Adds up every piece's sums of the rows of global tiles [t0, t1), scaled,
// into the targets' y.
void add_up(const GemvCall& call, size_t t0, size_t t1) {
  const size_t part_stride = call.piece_bytes / sizeof(int32_t);
  for_tiles(call.targets, call.n_targets, t0, t1, [&](const TernaryTarget& t, size_t base, size_t a, size_t b) {
    sum_parts_scaled(call.sums(0) + (base + a) * kRowTile, part_stride, call.pieces,
                     std::min(b * kRowTile, t.w.rows) - a * kRowTile, t.out_scale, t.y + a * kRowTile);
  });
}

// Called by each piece once it has walked its sequence and what it took from
// another. The sum starts when every piece has finished: then all sums are
// final and it waits for nobody. (Summing quad by quad as the slower piece
// reported rows final, stop 16, seldom overlapped anything once pieces stole
// -- the thief finishes with the victim -- and took 2-3 times as long after
// the last walk, docs/kernels.md, stop 18.) The rows are cut into
// call.sum_slices() slices that the finished pieces claim: with 2 pieces one
// slice, summed by the last piece to finish. A piece waits for the others
// only while every piece is walked by some thread: an unstarted one may be
// this thread's next, and then the last piece to finish sums what is left.
void finish_piece(const GemvCall& call) {
  Finished& finished = *call.finished;
  if (finished.pieces.fetch_add(1, std::memory_order_acq_rel) + 1 < call.pieces) {
    if (call.sum_slices() == 1 || !all_started(call)) return;
    spin_until([&] { return finished.pieces.load(std::memory_order_acquire) == call.pieces; });
  }
  const size_t tiles = total_tiles(call.targets, call.n_targets);
  const size_t slices = call.sum_slices();
  for (size_t s; (s = finished.next_slice.fetch_add(1, std::memory_order_relaxed)) < slices;)
    add_up(call, tiles * s / slices, tiles * (s + 1) / slices);
}

}  // namespace

void ternary_gemv(const Runtime& rt, const int8_t* q, const TernaryTarget* targets, size_t n_targets,
                  AlignedBuffer& scratch) {
  if (n_targets == 0) return;
  const KernelTable& k = *rt.kernels;
  const size_t chunks = targets[0].w.chunks();
  // Pieces are column-chunk ranges, one per thread: the layout is chunk-major,
  // so each thread streams one contiguous run of every matrix (split by row
  // tiles, each thread jumped from run to run: 59-67 % of the read bandwidth at
  // 2 threads against 69-78 % then, docs/kernels.md). Each piece builds the lookup
  // tables of its own chunks into its own buffer (no barrier, no tables from
  // the other core's cache) and writes exact int32 partial sums of every row;
  // the sum over pieces is the same integer for any split, and so is the sum
  // after a piece has taken the tail of another's steps. The tables are built
  // while the first target is walked (ternary_gemv_build_steps), not all
  // before its first load (that delayed a 2560x2560 call by ~2.5 us of ~40,
  // docs/kernels.md).
  const size_t pieces = std::min(chunks, rt.pool->size());
  size_t rows = 0;
  for (size_t i = 0; i < n_targets; ++i) rows += targets[i].w.padded_rows();
  // The pieces' control lines first, then each piece's tables and sums, in
  // pages of their own: with the pieces' buffers packed one after another, a
  // core's hardware prefetchers ran into the other core's lines (2560x2560 at
  // 2 threads: 4-5 % slower, docs/kernels.md).
  const size_t control_bytes = round_up(pieces * sizeof(PieceControl) + sizeof(Finished), kStreamPageBytes);
  const size_t table_bytes = round_up(chunks * k.ternary_table_bytes_per_chunk, 64);
  const size_t piece_bytes = round_up(table_bytes + rows * sizeof(int32_t), kStreamPageBytes);
  uint8_t* buffer = scratch.reserve(control_bytes + pieces * piece_bytes);
  // Value-initialized: nothing started, asked or finished. The pool's dispatch
  // publishes them to the workers.
  auto* control = reinterpret_cast<PieceControl*>(buffer);
  for (size_t p = 0; p < pieces; ++p) new (&control[p]) PieceControl{};
  auto* finished = new (buffer + pieces * sizeof(PieceControl)) Finished{};
  const GemvCall call{k, q, targets, n_targets, chunks, pieces, control, finished, buffer + control_bytes, table_bytes,
                      piece_bytes};
  rt.pool->parallel_for(pieces, [&](size_t p, size_t) {
    PieceControl& mine = control[p];
    mine.started.store(true, std::memory_order_release);
    int32_t* sums = call.sums(p);
    std::fill(sums, sums + rows, 0);
    size_t end = call.sequence_steps(p);
    walk_sequence(call, p, 0, end, call.tables(p), sums, &mine.box);
    // No grant after this: a thief that asked in the meantime is refused.
    uint32_t open = kStealOpen;
    if (!mine.box.state.compare_exchange_strong(open, kStealClosed, std::memory_order_acq_rel) &&
        open == kStealAsked)
      mine.box.state.store(kStealClosed, std::memory_order_release);
    // Only while every piece is walked by some thread: an unstarted one is
    // this thread's to take from the pool.
    if (all_started(call)) steal(call, p);
    finish_piece(call);
  }, 1);
}

void ternary_gemm(const Runtime& rt, const int8_t* q, size_t q_stride, size_t m,
                  const float* act_scale, const TernaryTarget* targets, size_t n_targets,
                  AlignedBuffer& scratch) {
  if (n_targets == 0 || m == 0) return;
  const KernelTable& k = *rt.kernels;
  // Per-row output scales of every target, laid out [target][row].
  float* scales = reinterpret_cast<float*>(scratch.reserve(n_targets * m * sizeof(float)));
  for (size_t i = 0; i < n_targets; ++i)
    for (size_t r = 0; r < m; ++r) scales[i * m + r] = targets[i].out_scale / act_scale[r];
  rt.pool->parallel_for(total_tiles(targets, n_targets), [&](size_t b, size_t e) {
    for_tiles(targets, n_targets, b, e, [&](const TernaryTarget& t, size_t, size_t t0, size_t t1) {
      const size_t idx = static_cast<size_t>(&t - targets);
      k.ternary_gemm_tiles(t.w, q, q_stride, m, scales + idx * m, t.y, t.y_stride, t0, t1);
    });
  }, kGemmTilesPerPiece);
}

namespace {

constexpr size_t kRowsPerTask = 64;  // LM head rows per kernel call
// LM head blocks per piece of work: ~2.6 MB of int8 rows (~100 us), so 63
// pieces for the 2B4T head, enough to balance when a thread is descheduled.
constexpr size_t kLmHeadBlocksPerPiece = 16;

// Calls fn(r0, r1) on the pool for blocks of kRowsPerTask of rows [0, rows),
// blocks_per_piece blocks per claimed piece.
template <class Fn>
void for_row_blocks(const Runtime& rt, size_t rows, size_t blocks_per_piece, Fn&& fn) {
  const size_t blocks = (rows + kRowsPerTask - 1) / kRowsPerTask;
  rt.pool->parallel_for(blocks, [&](size_t b, size_t e) {
    fn(b * kRowsPerTask, std::min(rows, e * kRowsPerTask));
  }, blocks_per_piece);
}

}  // namespace

void matvec_f16(const Runtime& rt, const f16_t* w, size_t rows, size_t cols, const float* x, float* y) {
  for_row_blocks(rt, rows, kLmHeadBlocksPerPiece,
                 [&](size_t r0, size_t r1) { rt.kernels->matvec_f16(w, cols, x, y, r0, r1); });
}

void matvec_i8(const Runtime& rt, const int8_t* w, size_t rows, size_t cols_padded, const int8_t* q,
               const float* row_scale, float x_inv_scale, float* y) {
  for_row_blocks(rt, rows, kLmHeadBlocksPerPiece, [&](size_t r0, size_t r1) {
    rt.kernels->matvec_i8(w, cols_padded, q, row_scale, x_inv_scale, y, r0, r1);
  });
}

void matvec_q4(const Runtime& rt, const uint8_t* w, size_t rows, size_t cols_padded, const int8_t* q,
               const float* row_scale, float x_inv_scale, float* y) {
  // Twice the i8 head's blocks per piece: q4 rows are half the bytes.
  for_row_blocks(rt, rows, 2 * kLmHeadBlocksPerPiece, [&](size_t r0, size_t r1) {
    rt.kernels->matvec_q4(w, cols_padded, q, row_scale, x_inv_scale, y, r0, r1);
  });
}

namespace {

// Values searched by one piece of top_k: 16 pieces for the 2B4T vocabulary.
constexpr size_t kTopKPieceValues = 8192;
// Candidate buffer of a top_k piece, in multiples of k.
constexpr size_t kTopKSlack = 4;

// A key whose unsigned order is the order top_k ranks by: the float's bits
// made monotonic in the high half, the complemented index in the low half so
// that equal values rank the lower index higher.
uint64_t rank_key(float v, size_t index) {
  uint32_t bits;
  std::memcpy(&bits, &v, 4);
  bits = (bits & 0x80000000u) ? ~bits : bits | 0x80000000u;
  return (uint64_t{bits} << 32) | ~static_cast<uint32_t>(index);
}

}  // namespace

void top_k(const Runtime& rt, const float* values, size_t n, size_t k, uint32_t* out, AlignedBuffer& scratch) {
  if (k == 0) return;
  const size_t pieces = (n + kTopKPieceValues - 1) / kTopKPieceValues;
  // Each piece collects the keys of values that may still be among its k best
  // in a buffer of kTopKSlack * k; when it fills, nth_element keeps the best k
  // and raises the floor. Far fewer moves than a heap: measured 3x faster.
  const size_t capacity = kTopKSlack * k;
  uint64_t* buffers = reinterpret_cast<uint64_t*>(scratch.reserve(pieces * (capacity + k) * sizeof(uint64_t)));
  uint64_t* best = buffers + pieces * capacity;  // each piece's k best, then merged
  const auto greater = std::greater<uint64_t>();
  rt.pool->parallel_for(pieces, [&](size_t p0, size_t p1) {
    for (size_t p = p0; p < p1; ++p) {
      uint64_t* buf = buffers + p * capacity;
      const size_t begin = p * kTopKPieceValues, end = std::min(n, begin + kTopKPieceValues);
      size_t size = 0;
      // No value below the k-th best kept so far can enter: one float compare
      // skips almost every value (NaN compares false and is ranked by its key).
      float floor_value = -INFINITY;
      for (size_t i = begin; i < end; ++i) {
        if (values[i] < floor_value) continue;
        buf[size++] = rank_key(values[i], i);
        if (size == capacity) {
          std::nth_element(buf, buf + k - 1, buf + size, greater);
          size = k;
          floor_value = values[~static_cast<uint32_t>(buf[k - 1])];
        }
      }
      if (size > k) std::nth_element(buf, buf + k - 1, buf + size, greater);
      // A short piece leaves slots unused: key 0 ranks below every real key
      // (it would be index 2^32 - 1 of the NaN whose bits are all ones).
      std::fill(buf + std::min(size, k), buf + k, uint64_t{0});
      std::copy(buf, buf + k, best + p * k);
    }
  }, 1);
  std::partial_sort(best, best + k, best + pieces * k, greater);
  for (size_t i = 0; i < k; ++i) out[i] = ~static_cast<uint32_t>(best[i]);
}

void attention(const Runtime& rt, const float* q, const f16_t* k_cache, const f16_t* v_cache,
               KvCacheLayout layout, size_t t_len, size_t n_heads, size_t n_kv_heads, size_t head_dim,
               float* out, AlignedBuffer& scratch) {
  const size_t group = n_heads / n_kv_heads;
  float* scores = reinterpret_cast<float*>(scratch.reserve(n_heads * t_len * sizeof(float)));
  const float scale = 1.f / std::sqrt(static_cast<float>(head_dim));
  // One piece per thread: an equal run of query heads, attended a KV head's
  // share at a time. Each piece reads the K and V rows of the KV heads its run
  // touches, so a KV head is read twice only where two runs split its group
  // (2 threads: 10 + 10 of 20 heads, the middle KV head read twice). That beat
  // whole groups per piece (3 + 2 KV heads) and half groups (10 pieces, every
  // KV head read twice): docs/kernels.md.
  const size_t pieces = std::min(rt.pool->size(), n_heads);
  rt.pool->parallel_for(pieces, [&](size_t p0, size_t p1) {
    for (size_t p = p0; p < p1; ++p) {
      for (size_t h = n_heads * p / pieces, end = n_heads * (p + 1) / pieces; h < end;) {
        const size_t kvh = h / group, heads = std::min(end, (kvh + 1) * group) - h;
        const size_t head = kvh * layout.head_stride;
        rt.kernels->attend(q + h * head_dim, heads, k_cache + head, v_cache + head, layout.position_stride, t_len,
                           head_dim, scale, scores + h * t_len, out + h * head_dim);
        h += heads;
      }
    }
  }, 1);
}

void parallel_stream_read(const Runtime& rt, const uint8_t* data, size_t bytes, ReadPrefetch how) {
  const size_t lines = bytes / 64, threads = rt.pool->size();
  std::atomic<uint64_t> sink{0};
  rt.pool->parallel_for(threads, [&](size_t b, size_t e) {
    for (size_t part = b; part < e; ++part) {
      const size_t lo = lines * part / threads, hi = lines * (part + 1) / threads;
      sink.fetch_xor(rt.kernels->stream_read(data + lo * 64, (hi - lo) * 64, how), std::memory_order_relaxed);
    }
  }, 1);
}

double measure_read_bandwidth(const Runtime& rt, size_t bytes, int passes) {
  AlignedBuffer buffer;
  bytes = round_up(bytes, 64);
  uint8_t* data = buffer.reserve(bytes);
  std::memset(data, 1, bytes);  // fault every page in before timing
  double best = 0;
  for (int pass = 0; pass < passes; ++pass) {
    for (const ReadPrefetch how : kReadPrefetches) {
      const auto start = std::chrono::steady_clock::now();
      parallel_stream_read(rt, data, bytes, how);
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      best = std::max(best, static_cast<double>(bytes) / seconds);
    }
  }
  return best;
}

std::vector<OffCpu> measure_off_cpu(const Runtime& rt, double seconds) {
  using Clock = std::chrono::steady_clock;
  const auto median = [](std::vector<double>& v) {
    if (v.empty()) return 0.0;
    std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
    return v[v.size() / 2];
  };
  std::vector<OffCpu> result(rt.pool->size());
  rt.pool->parallel_for(result.size(), [&](size_t b, size_t e) {
    for (size_t part = b; part < e; ++part) {
      std::vector<double> lengths, periods;
      const Clock::time_point begin = Clock::now();
      Clock::time_point last = begin;
      double elapsed = 0, last_start = 0;
      while (elapsed < seconds) {
        const Clock::time_point t = Clock::now();
        const double gap = std::chrono::duration<double>(t - last).count();
        if (gap > kOffCpuGapSeconds) {
          if (!lengths.empty()) periods.push_back(elapsed - last_start);
          last_start = elapsed;
          lengths.push_back(gap);
        }
        last = t;
        elapsed = std::chrono::duration<double>(t - begin).count();
      }
      OffCpu& r = result[part];
      r.gaps = lengths.size();
      for (const double l : lengths) r.fraction += l;
      r.fraction /= elapsed;
      r.median_gap = median(lengths);
      r.median_period = median(periods);
    }
  }, 1);
  return result;
}

}  // namespace bitnet
