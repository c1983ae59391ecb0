// Every runnable SIMD table's ternary GEMV/GEMM against the scalar table
// (bit-identical floats), on split ranges and edge cases, and the threaded ops
// in ops.h for several pool sizes.
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "check.h"
#include "kernel_table.h"
#include "ops.h"
#include "ternary_format.h"

using namespace bitnet;

namespace {

// Weights in kWeightAlign-aligned storage, as a model file mapping provides.
struct Matrix {
  std::unique_ptr<uint8_t, decltype(&std::free)> bytes{nullptr, &std::free};
  TernaryView view;
};

Matrix pack(const std::vector<int8_t>& w, size_t rows, size_t cols) {
  Matrix m;
  const size_t n = packed_bytes(rows, cols);
  m.bytes.reset(static_cast<uint8_t*>(std::aligned_alloc(kWeightAlign, round_up(n, kWeightAlign))));
  const bool ok = pack_ternary(w.data(), rows, cols, m.bytes.get());
  CHECK(ok);
  m.view = TernaryView{m.bytes.get(), rows, cols};
  return m;
}

enum class Fill { kRandom, kPlus, kMinus, kZeroRows };

std::vector<int8_t> make_weights(size_t rows, size_t cols, Fill fill, std::mt19937& rng) {
  std::vector<int8_t> w(rows * cols);
  for (size_t r = 0; r < rows; ++r) {
    for (size_t c = 0; c < cols; ++c) {
      int8_t v = static_cast<int8_t>(static_cast<int>(rng() % 3) - 1);
      if (fill == Fill::kPlus) v = 1;
      if (fill == Fill::kMinus) v = -1;
      if (fill == Fill::kZeroRows && r % 3 == 1) v = 0;
      w[r * cols + c] = v;
    }
  }
  return w;
}

enum class Act { kRandom, kMin, kMax, kZero, kExtremes };

// m rows of `stride` int8, zero beyond cols (the contract's padding).
std::vector<int8_t> make_activations(size_t m, size_t cols, size_t stride, Act act, std::mt19937& rng) {
  std::vector<int8_t> q(m * stride, 0);
  for (size_t i = 0; i < m; ++i) {
    for (size_t c = 0; c < cols; ++c) {
      int v = static_cast<int>(rng() % 256) - 128;
      if (act == Act::kMin) v = -128;
      if (act == Act::kMax) v = 127;
      if (act == Act::kZero) v = 0;
      if (act == Act::kExtremes) v = rng() % 2 ? -128 : 127;
      q[i * stride + c] = static_cast<int8_t>(v);
    }
  }
  return q;
}

struct Tables {
  std::unique_ptr<uint8_t, decltype(&std::free)> bytes{nullptr, &std::free};
  Tables(const KernelTable& k, size_t chunks)
      : bytes(static_cast<uint8_t*>(std::aligned_alloc(64, round_up(chunks * k.ternary_table_bytes_per_chunk, 64))),
              &std::free) {}
};

// A 64-byte-aligned buffer for the int32 sums of every padded row of w.
std::unique_ptr<int32_t, decltype(&std::free)> row_sums(const TernaryView& w) {
  return {static_cast<int32_t*>(std::aligned_alloc(64, round_up(w.padded_rows() * sizeof(int32_t), 64))), &std::free};
}

// Follows one GEMV walk through its hook: each call must come right after one
// more step, with that step's sums stored, which a scalar walk of the same
// steps in lockstep checks (on small matrices: it is slow). The hook runs on
// every step through a poll word that is always set; at step cut_at it cuts
// the walk short (lowering its end to cut_to, as ops.cpp does when it grants
// a thief the tail).
class StepChecker {
 public:
  StepChecker(const TernaryView& w, const int8_t* q, const int32_t* sums, size_t begin, size_t cut_at, size_t cut_to)
      : w_(w), sums_(sums), next_(begin), cut_at_(cut_at), cut_to_(cut_to), activations_(w.padded_cols()) {
    if (w.rows * w.cols <= kLockstepWeights) {
      copy_activations_as_tables(q, 0, w.chunks(), activations_.data());
      model_.assign(sums, sums + w.padded_rows());
    }
  }
  void attach(GemvWalk& walk) {
    walk.poll = &always_;
    walk.hook = [](GemvWalk& wk, size_t done) { static_cast<StepChecker*>(wk.context)->step(wk, done); };
    walk.context = this;
  }
  // After the call: every step reported.
  void verify(const GemvWalk& walk) const { CHECK_EQ(next_, walk.end); }

 private:
  static constexpr size_t kLockstepWeights = 1 << 20;
  void step(GemvWalk& walk, size_t done) {
    CHECK_EQ(done, next_ + 1);
    next_ = done;
    if (!model_.empty()) {
      GemvWalk one{done};
      scalar_kernels().ternary_gemv_steps(w_, activations_.data(), done - 1, one, model_.data());
      const size_t t = (done - 1) % w_.quads() * kQuadTiles;
      const size_t first = t * kRowTile, n = w_.quad_tiles(t) * kRowTile;
      CHECK(std::memcmp(sums_ + first, model_.data() + first, n * sizeof(int32_t)) == 0);
    }
    if (done == cut_at_) walk.end = cut_to_;
  }
  const TernaryView& w_;
  const int32_t* sums_;
  size_t next_;
  const size_t cut_at_, cut_to_;
  std::vector<uint8_t> activations_;
  std::vector<int32_t> model_;
  std::atomic<uint32_t> always_{1};
};

// Exact int32 sums W q through one table: steps [0, split) and [split, steps)
// walked as two ranges whose partial sums are added, as ops.cpp adds its
// pieces. The first range starts out to the end and is cut to `split` from its
// hook halfway, as an owner grants its tail; the second is walked as the thief
// walks it. Both add to sums that start at a known value. With build, the
// tables come from ternary_gemv_build_steps (into garbage), and must end up
// as ternary_gemv_prepare builds them, which the other targets of a GEMV reuse.
std::vector<int32_t> gemv(const KernelTable& k, const TernaryView& w, const int8_t* q, size_t split, bool build) {
  const size_t steps = w.chunks() * w.quads(), table_bytes = w.chunks() * k.ternary_table_bytes_per_chunk;
  Tables tables(k, w.chunks()), prepared(k, w.chunks());
  std::memset(tables.bytes.get(), 0xA5, table_bytes);
  std::memset(prepared.bytes.get(), 0xA5, table_bytes);
  k.ternary_gemv_prepare(q, 0, w.chunks(), prepared.bytes.get());
  if (!build) std::memcpy(tables.bytes.get(), prepared.bytes.get(), table_bytes);
  std::vector<int32_t> total(w.padded_rows(), 0);
  const auto part = row_sums(w);
  int32_t* sums = part.get();
  constexpr int32_t kStart = -1234567;
  const bool cut = split >= 2 && split < steps;
  const struct {
    size_t begin, end, cut_at;
  } ranges[] = {{0, cut ? steps : split, cut ? split / 2 : SIZE_MAX}, {split, steps, SIZE_MAX}};
  for (const auto& r : ranges) {
    if (r.begin == r.end) continue;
    std::fill(sums, sums + w.padded_rows(), kStart);
    GemvWalk walk{r.end};
    StepChecker checker(w, q, sums, r.begin, r.cut_at, split);
    checker.attach(walk);
    if (build) k.ternary_gemv_build_steps(w, q, r.begin, walk, tables.bytes.get(), sums);
    else k.ternary_gemv_steps(w, tables.bytes.get(), r.begin, walk, sums);
    checker.verify(walk);
    for (size_t i = 0; i < w.padded_rows(); ++i) total[i] += sums[i] - kStart;
  }
  CHECK(std::memcmp(tables.bytes.get(), prepared.bytes.get(), table_bytes) == 0);
  return total;
}

std::vector<float> gemm(const KernelTable& k, const TernaryView& w, const std::vector<int8_t>& q,
                        size_t q_stride, size_t m, size_t y_stride, size_t ts) {
  std::vector<float> scales(m);
  for (size_t i = 0; i < m; ++i) scales[i] = 0.001f * static_cast<float>(i + 1);
  std::vector<float> y(m * y_stride, -7.f);
  k.ternary_gemm_tiles(w, q.data(), q_stride, m, scales.data(), y.data(), y_stride, 0, ts);
  k.ternary_gemm_tiles(w, q.data(), q_stride, m, scales.data(), y.data(), y_stride, ts, w.row_tiles());
  return y;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Exact int32 dot of one row, independent of every kernel table.
int32_t dot(const std::vector<int8_t>& w, size_t cols, size_t row, const int8_t* q) {
  int32_t s = 0;
  for (size_t c = 0; c < cols; ++c) s += w[row * cols + c] * q[c];
  return s;
}

void check_gemv_shape(size_t rows, size_t cols, Fill fill, Act act, std::mt19937& rng) {
  const auto wv = make_weights(rows, cols, fill, rng);
  const Matrix w = pack(wv, rows, cols);
  const auto q = make_activations(1, cols, w.view.padded_cols(), act, rng);
  const size_t steps = w.view.chunks() * w.view.quads();
  const auto ref = gemv(scalar_kernels(), w.view, q.data(), steps, false);
  for (size_t r = 0; r < rows; r += 1 + rows / 17) CHECK_EQ(ref[r], dot(wv, cols, r, q.data()));
  for (size_t r = rows; r < w.view.padded_rows(); ++r) CHECK_EQ(ref[r], 0);
  // Whole, split at a chunk boundary, split inside a chunk; walked alone and building the tables.
  const size_t splits[] = {steps, w.view.chunks() / 2 * w.view.quads(), steps / 2 + 1};
  for (const KernelTable* k : check::runnable_tables())
    for (const size_t split : splits)
      for (const bool build : {false, true})
        if (gemv(*k, w.view, q.data(), split, build) != ref)
          check::fail(__FILE__, __LINE__, std::string(k->isa_name) + " gemv differs at " + std::to_string(rows) +
                                              "x" + std::to_string(cols) + ", split at step " +
                                              std::to_string(split) + (build ? ", building tables" : ""));
}

void check_gemm_shape(size_t rows, size_t cols, size_t m, Fill fill, Act act, std::mt19937& rng) {
  const auto wv = make_weights(rows, cols, fill, rng);
  const Matrix w = pack(wv, rows, cols);
  const size_t q_stride = w.view.padded_cols() + 3, y_stride = rows + 5;  // unaligned token rows
  const auto q = make_activations(m, cols, q_stride, act, rng);
  const auto ref = gemm(scalar_kernels(), w.view, q, q_stride, m, y_stride, w.view.row_tiles());
  for (const KernelTable* k : check::simd_tables()) {
    const auto y = gemm(*k, w.view, q, q_stride, m, y_stride, w.view.row_tiles() / 2);
    if (!same_bits(y, ref))
      check::fail(__FILE__, __LINE__, std::string(k->isa_name) + " gemm differs at " +
                                          std::to_string(rows) + "x" + std::to_string(cols) +
                                          " m=" + std::to_string(m));
  }
}

}  // namespace

TEST_CASE(gemv_matches_scalar_on_ragged_shapes) {
  std::mt19937 rng(11);
  const size_t shapes[][2] = {{1, 1},    {3, 7},    {64, 128}, {65, 129},
                              {63, 255}, {130, 300}, {200, 1000}, {257, 385}};
  for (const auto& s : shapes) check_gemv_shape(s[0], s[1], Fill::kRandom, Act::kRandom, rng);
}

TEST_CASE(gemv_matches_scalar_at_activation_extremes) {
  std::mt19937 rng(12);
  const Fill fills[] = {Fill::kPlus, Fill::kMinus, Fill::kZeroRows, Fill::kRandom};
  const Act acts[] = {Act::kMin, Act::kMax, Act::kZero, Act::kExtremes};
  for (Fill f : fills)
    for (Act a : acts) check_gemv_shape(130, 640, f, a, rng);
}

TEST_CASE(gemv_matches_scalar_on_2b4t_shapes) {
  std::mt19937 rng(13);
  const size_t shapes[][2] = {{2560, 2560}, {640, 2560}, {6912, 2560}, {2560, 6912}};
  for (const auto& s : shapes) check_gemv_shape(s[0], s[1], Fill::kRandom, Act::kRandom, rng);
  check_gemv_shape(2560, 6912, Fill::kMinus, Act::kMin, rng);  // largest |sum|: 128 * 6912
}

TEST_CASE(gemm_matches_scalar_on_ragged_shapes_and_token_counts) {
  std::mt19937 rng(21);
  const size_t shapes[][2] = {{1, 1}, {65, 129}, {130, 300}, {257, 385}};
  const size_t ms[] = {1, 2, 5, 6, 7, 13};
  for (const auto& s : shapes)
    for (size_t m : ms) check_gemm_shape(s[0], s[1], m, Fill::kRandom, Act::kRandom, rng);
  check_gemm_shape(200, 1000, 130, Fill::kRandom, Act::kRandom, rng);
}

TEST_CASE(gemm_matches_scalar_at_activation_extremes) {
  std::mt19937 rng(22);
  const Fill fills[] = {Fill::kPlus, Fill::kMinus, Fill::kZeroRows};
  const Act acts[] = {Act::kMin, Act::kMax, Act::kExtremes};
  for (Fill f : fills)
    for (Act a : acts) check_gemm_shape(70, 300, 7, f, a, rng);
}

TEST_CASE(gemm_matches_scalar_on_a_2b4t_shape) {
  std::mt19937 rng(23);
  check_gemm_shape(640, 2560, 9, Fill::kRandom, Act::kRandom, rng);
  check_gemm_shape(130, 6912, 3, Fill::kMinus, Act::kMin, rng);
}

TEST_CASE(ops_results_do_not_depend_on_thread_count) {
  constexpr int kGemvCalls = 20;
  std::mt19937 rng(31);
  const size_t cols = 700, m = 11;
  const size_t rows[] = {300, 70, 70};  // q/k/v-like targets sharing one input
  std::vector<Matrix> mats;
  std::vector<std::vector<int8_t>> mats_w;
  for (size_t r : rows) {
    mats_w.push_back(make_weights(r, cols, Fill::kRandom, rng));
    mats.push_back(pack(mats_w.back(), r, cols));
  }
  const size_t padded = mats[0].view.padded_cols();
  const auto q = make_activations(m, cols, padded, Act::kRandom, rng);
  std::vector<float> act_scale(m);
  for (size_t i = 0; i < m; ++i) act_scale[i] = 10.f + static_cast<float>(i);

  std::vector<float> gemv_ref, gemm_ref;
  for (const KernelTable* k : check::runnable_tables()) {
    for (size_t threads : {1, 2, 3, 8}) {
      ThreadPool pool(threads);
      const Runtime rt{k, &pool};
      AlignedBuffer scratch;
      std::vector<float> gemv_out, gemm_out;
      std::vector<std::vector<float>> ys(mats.size());
      std::vector<TernaryTarget> targets;
      for (size_t i = 0; i < mats.size(); ++i) {
        ys[i].assign(mats[i].view.rows, 0.f);
        targets.push_back({mats[i].view, 0.5f + static_cast<float>(i), ys[i].data(), 0});
      }
      // Threads take steps from each other as they finish (ops.cpp), so each
      // call may split the work differently: every call must give the same bits.
      for (int call = 0; call < kGemvCalls; ++call) {
        ternary_gemv(rt, q.data(), targets.data(), targets.size(), scratch);
        std::vector<float> out;
        for (const auto& y : ys) out.insert(out.end(), y.begin(), y.end());
        if (call > 0 && !same_bits(out, gemv_out))
          check::fail(__FILE__, __LINE__, std::string(k->isa_name) + " with " + std::to_string(threads) +
                                              " threads differs between calls");
        gemv_out = std::move(out);
      }
      for (size_t i = 0; i < mats.size(); ++i) {
        ys[i].assign(m * mats[i].view.rows, 0.f);
        targets[i].y = ys[i].data();
        targets[i].y_stride = mats[i].view.rows;
      }
      ternary_gemm(rt, q.data(), padded, m, act_scale.data(), targets.data(), targets.size(), scratch);
      for (const auto& y : ys) gemm_out.insert(gemm_out.end(), y.begin(), y.end());
      if (gemv_ref.empty()) {
        gemv_ref = gemv_out;
        gemm_ref = gemm_out;
        // The int32 pieces are added and scaled once: check against exact dots.
        for (size_t r = 0; r < rows[0]; r += 7)
          CHECK_EQ(gemv_ref[r], static_cast<float>(dot(mats_w[0], cols, r, q.data())) * 0.5f);
      }
      if (!same_bits(gemv_out, gemv_ref) || !same_bits(gemm_out, gemm_ref))
        check::fail(__FILE__, __LINE__, std::string(k->isa_name) + " with " + std::to_string(threads) +
                                            " threads differs");
    }
  }
}

TEST_MAIN
