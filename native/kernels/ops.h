// Multithreaded operations built from one KernelTable and one ThreadPool.
// Each op splits its output (row tiles, rows, heads) over the pool; every
// output element is computed by the same kernel code whatever the split, so
// results are bit-identical for any thread count.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <vector>

#include "kernel_table.h"
#include "thread_pool.h"

namespace bitnet {

// A growable page-aligned scratch buffer (lookup tables, partial results).
class AlignedBuffer {
 public:
  uint8_t* reserve(size_t bytes);
  uint8_t* data() const { return data_.get(); }

 private:
  struct Free {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  std::unique_ptr<uint8_t, Free> data_;
  size_t size_ = 0;
};

struct Runtime {
  const KernelTable* kernels;
  ThreadPool* pool;
};

// BitNet per-token activation quantization (reference 2.2). Writes n int8
// values then zeros up to padded_len; returns s = 127 / max(absmax(x), 1e-5).
float quantize_activations(const KernelTable& k, const float* x, size_t n, int8_t* q,
                           size_t padded_len);

// One ternary matrix applied to a shared input: y = (W q) * out_scale.
struct TernaryTarget {
  TernaryView w;
  float out_scale;  // weight scale / activation scale
  float* y;         // w.rows floats (GEMM: m rows of y_stride)
  size_t y_stride;  // GEMM only
};

// Decode: every target reads the same quantized vector q (padded_cols long,
// all targets must have the same padded_cols). scratch holds the lookup
// tables and partial sums between calls.
void ternary_gemv(const Runtime& rt, const int8_t* q, const TernaryTarget* targets, size_t n_targets,
                  AlignedBuffer& scratch);

// Prefill: m quantized rows of q (stride q_stride), per-row activation scales
// act_scale[m]; target i's out_scale is the weight scale, divided per row by act_scale.
void ternary_gemm(const Runtime& rt, const int8_t* q, size_t q_stride, size_t m,
                  const float* act_scale, const TernaryTarget* targets, size_t n_targets,
                  AlignedBuffer& scratch);

// LM head rows split over the pool.
void matvec_f16(const Runtime& rt, const f16_t* w, size_t rows, size_t cols, const float* x, float* y);
void matvec_i8(const Runtime& rt, const int8_t* w, size_t rows, size_t cols_padded, const int8_t* q,
               const float* row_scale, float x_inv_scale, float* y);
void matvec_q4(const Runtime& rt, const uint8_t* w, size_t rows, size_t cols_padded, const int8_t* q,
               const float* row_scale, float x_inv_scale, float* y);

// Writes to out the indices of the k largest of values[0, n) (k <= n), largest
// first, equal values in index order, NaN ranked by its bits. That is a total
// order, so out is the same for any thread count. Pieces of the input are
// searched in parallel; scratch is reused memory.
void top_k(const Runtime& rt, const float* values, size_t n, size_t k, uint32_t* out, AlignedBuffer& scratch);

// Where a K or V cache holds the head_dim f16 values of KV head j at position
// t: at j * head_stride + t * position_stride elements from its start.
// Position-major, {n_kv_heads * head_dim, head_dim}, appends one row per token;
// head-major, {head_dim, capacity * head_dim}, makes each head's rows one run
// of memory, which decode reads from DRAM 1.2-1.4x faster (docs/kernels.md).
struct KvCacheLayout {
  size_t position_stride, head_stride;
};

// Single-query attention for n_heads query heads sharing n_kv_heads KV heads
// (query head h reads KV head h / (n_heads / n_kv_heads)). q: n_heads*head_dim;
// k_cache/v_cache: t_len positions of n_kv_heads heads of head_dim f16, laid
// out as `layout` says; out like q. The result does not depend on the layout.
void attention(const Runtime& rt, const float* q, const f16_t* k_cache, const f16_t* v_cache,
               KvCacheLayout layout, size_t t_len, size_t n_heads, size_t n_kv_heads, size_t head_dim,
               float* out, AlignedBuffer& scratch);

// Reads [data, data + bytes) once (bytes a multiple of 64) with every thread
// of the pool, each a contiguous share, by KernelTable::stream_read.
void parallel_stream_read(const Runtime& rt, const uint8_t* data, size_t bytes, ReadPrefetch how);

// Streaming read bandwidth of this machine with the pool's threads, in bytes
// per second: the best, over `passes` passes and every ReadPrefetch, of
// parallel_stream_read over `bytes` bytes (use a buffer much larger than the
// last-level cache), the roofline of decode.
double measure_read_bandwidth(const Runtime& rt, size_t bytes, int passes = 3);

// The time the host took from one thread of the pool: the gaps of more than
// kOffCpuGapSeconds between the thread's clock reads (a read takes ~25 ns).
struct OffCpu {
  double fraction = 0;       // of the measured time
  size_t gaps = 0;
  double median_gap = 0;     // seconds
  double median_period = 0;  // seconds from one gap's start to the next's
};
constexpr double kOffCpuGapSeconds = 2e-6;

// Every thread of the pool reads the clock in a loop for `seconds`, all at
// once; one OffCpu per thread. On a VM whose host stops each vCPU now and
// then (on the one of docs/kernels.md, stop 19, for 35-50 us every 1 ms), an
// op that needs every thread waits for whichever stops: this says how much.
std::vector<OffCpu> measure_off_cpu(const Runtime& rt, double seconds);

}  // namespace bitnet
