// Kernel benchmark: memory read bandwidth, ternary GEMV (decode) on the 2B4T
// shapes, the LM head (f16, int8 and 4-bit), and ternary GEMM (prefill), per runnable
// ISA, plus decode attention over the KV cache (2B4T heads, 64 to 4096 cached
// positions), at 1 and 2 threads, all through ops.h. GEMV weights cycle over distinct
// copies filling --weight-mib MiB so that every call streams from DRAM, as a
// decode pass over 30 layers does. Prints a table, or JSON with --json.
//
//   bench_kernels [--json] [--weight-mib N] [--seconds S] [--threads T]
//                 [--only bandwidth|gemv|lm_head|gemm|attention] [--isa NAME]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#if defined(__x86_64__)
#include "x86_avx512/avx512_intrinsics.h"
#endif

#include "bench_common.h"
#include "isa.h"
#include "ops.h"
#include "thread_pool.h"

using namespace bitnet;
using namespace bitnet::bench;

namespace {

struct Options {
  bool json = false;
  size_t weight_mib = 1024;
  double seconds = 0.25;  // minimum measured time per row
  size_t max_threads = 2;
  std::string only;  // run one section (empty: all)
  std::string isa;   // run one ISA (empty: every runnable one)
  bool runs(const char* section) const { return only.empty() || only == section; }
};

// Random valid planes (never both bits set); the benchmark shapes have no padding.
void fill_planes(uint8_t* p, size_t bytes, uint64_t seed) {
  for (size_t blk = 0; blk < bytes; blk += kGroupBytes) {
    for (size_t i = 0; i < kPlaneBytes; i += 8) {
      const uint64_t plus = next_random(seed), minus = next_random(seed) & ~plus;
      std::memcpy(p + blk + i, &plus, 8);
      std::memcpy(p + blk + kPlaneBytes + i, &minus, 8);
    }
  }
}

// ------------------------------------------------------------------ results

struct Row {
  std::string section, isa, shape;
  size_t threads;
  double seconds_per_call;         // of the fastest window (time_calls_each)
  double median_seconds_per_call;  // the median call
  double bytes_per_call;  // weight bytes (or buffer bytes) read per call
  double macs_per_call;   // multiply-accumulates per call
  // Measured right before the row with the same threads: read bandwidth of the
  // same buffer (GB/s) for GEMV/LM head rows, vpdpbusd peak (GMAC/s) for GEMM.
  double reference;
  // GEMV and attention rows: the read bandwidth of the median call that reads
  // as many bytes, split the same way (measure_call_bandwidth); else 0.
  double call_reference;
  double gbps() const { return bytes_per_call / seconds_per_call / 1e9; }
  double median_gbps() const { return bytes_per_call / median_seconds_per_call / 1e9; }
  double gmacs() const { return macs_per_call / seconds_per_call / 1e9; }
};

// How long every thread of the largest pool watches for time the host takes.
constexpr double kOffCpuSeconds = 0.5;

bool is_gemm(const Row& r) { return r.section.rfind("gemm", 0) == 0; }
double fraction(const Row& r) { return r.reference > 0 ? (is_gemm(r) ? r.gmacs() : r.gbps()) / r.reference : 0; }
double call_fraction(const Row& r) { return r.call_reference > 0 ? r.median_gbps() / r.call_reference : 0; }

struct Report {
  Options opt;
  double ghz = 0;                   // measured core clock
  std::vector<OffCpu> off_cpu;      // per thread of the largest pool
  std::vector<Row> rows;
};

// ------------------------------------------------------------------ machine

// A chain of dependent adds retires one per cycle: their rate is the clock.
// Short calls, fastest one kept: a call that was not preempted shows the clock.
double measure_ghz() {
  constexpr uint64_t kAdds = 1000000;
  double best = 1e30;
  for (int call = 0; call < 200; ++call) {
    uint64_t x = 0;
    const double t0 = now();
    for (uint64_t i = 0; i < kAdds; i += 4) {
#if defined(__x86_64__)
      __asm__ volatile("add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0" : "+r"(x));
#elif defined(__aarch64__)
      __asm__ volatile("add %0, %0, #1\n\tadd %0, %0, #1\n\tadd %0, %0, #1\n\tadd %0, %0, #1" : "+r"(x));
#else
      x += 4;
#endif
    }
    best = std::min(best, now() - t0);
  }
  return static_cast<double>(kAdds) / best / 1e9;
}

#if defined(__x86_64__)
constexpr int kVnniAcc = 12;          // independent accumulators: cover vpdpbusd latency
constexpr int64_t kVnniIters = 1000000;

// kVnniIters x kVnniAcc vpdpbusd zmm; the asm barrier keeps the operands opaque.
__attribute__((target("avx512f,avx512bw,avx512vnni"), noinline)) int vnni_loop(int seed) {
  __m512i acc[kVnniAcc];
  for (int j = 0; j < kVnniAcc; ++j) acc[j] = _mm512_set1_epi32(j + seed);
  __m512i a = _mm512_set1_epi32(0x01020304 + seed), b = _mm512_set1_epi32(0x05060708);
  for (int64_t i = 0; i < kVnniIters; ++i) {
#pragma GCC unroll 12
    for (int j = 0; j < kVnniAcc; ++j) acc[j] = _mm512_dpbusd_epi32(acc[j], a, b);
    __asm__ volatile("" : "+v"(a), "+v"(b));
  }
  __m512i sum = acc[0];
  for (int j = 1; j < kVnniAcc; ++j) sum = _mm512_add_epi32(sum, acc[j]);
  return _mm512_reduce_add_epi32(sum);
}

// vpdpbusd zmm throughput of every thread of the pool at once, in int8 GMAC/s.
double vnni_peak_gmacs(ThreadPool& pool, double seconds) {
  std::vector<int> sinks(pool.size());
  const double t = time_calls(seconds, [&](size_t i) {
    pool.parallel_for(pool.size(), [&](size_t b, size_t e) {
      for (size_t part = b; part < e; ++part) sinks[part] += vnni_loop(static_cast<int>(i + part));
    });
  });
  return static_cast<double>(kVnniIters) * kVnniAcc * 64 * pool.size() / t / 1e9;
}
#endif

// The peak a GEMM row is compared with: vpdpbusd zmm where this CPU has it, else 0.
double gemm_reference(ThreadPool& pool, double seconds) {
#if defined(__x86_64__)
  const auto isas = runnable_isas();
  if (std::find(isas.begin(), isas.end(), "avx512") != isas.end()) return vnni_peak_gmacs(pool, seconds);
#endif
  (void)pool, (void)seconds;
  return 0;
}

// ------------------------------------------------------------------ sections

struct Shape {
  size_t rows, cols;
};
const Shape kGemvShapes[] = {{2560, 2560}, {640, 2560}, {6912, 2560}, {2560, 6912}};
const Shape kLmHead = {128256, 2560};
const Shape kGemmShapes[] = {{2560, 2560}, {6912, 2560}};
const size_t kGemmTokens[] = {128, 512};

std::string shape_name(const Shape& s) { return std::to_string(s.rows) + "x" + std::to_string(s.cols); }

// A reference measured with the pool's threads for about `seconds`.
using Reference = std::function<double(ThreadPool&, double seconds)>;

// Rounds of (references, op) per row. A fraction compares measurements taken
// next to each other, and the row shows the median round, so that a moment
// when the VM slows one of them does not decide the row.
constexpr size_t kRounds = 3;

// The round whose by(round) is the median.
Row median_round(std::vector<Row> rounds, double (*by)(const Row&)) {
  std::sort(rounds.begin(), rounds.end(), [&](const Row& a, const Row& b) { return by(a) < by(b); });
  return rounds[rounds.size() / 2];
}

// Times one op at 1..max_threads threads per ISA, in kRounds rounds each
// right after its reference measurements with the same pool (call_reference
// may be empty). The row's fastest-window numbers (us/call, ref, frac) come
// from the round with the median frac, its median-call numbers (med us, call
// ref, call frac) from the round with the median call frac. op(runtime, call
// index).
void bench_op(Report& rep, const std::vector<std::string>& isas, const std::string& section, const Shape& s,
              double bytes, double macs, const Reference& reference, const Reference& call_reference,
              const std::function<void(const Runtime&, size_t)>& op) {
  const double seconds = rep.opt.seconds / kRounds;
  for (const auto& isa : isas) {
    for (size_t threads = 1; threads <= rep.opt.max_threads; ++threads) {
      ThreadPool pool(threads);
      const Runtime rt{&kernels_for(isa), &pool};
      std::vector<Row> rounds;
      for (size_t round = 0; round < kRounds; ++round) {
        const double ref = reference(pool, seconds), call_ref = call_reference ? call_reference(pool, seconds) : 0;
        const CallTimes t = time_calls_each(seconds, [&](size_t i) { op(rt, i); });
        rounds.push_back({section, isa, shape_name(s), threads, t.best_window, t.median, bytes, macs, ref, call_ref});
      }
      Row row = median_round(rounds, fraction);
      const Row by_call = median_round(rounds, call_fraction);
      row.median_seconds_per_call = by_call.median_seconds_per_call;
      row.call_reference = by_call.call_reference;
      rep.rows.push_back(row);
    }
  }
}

void bench_gemv(Report& rep, const std::vector<std::string>& isas, uint8_t* weights, size_t weight_bytes) {
  for (const Shape& s : kGemvShapes) {
    const size_t bytes = packed_bytes(s.rows, s.cols), padded = round_up(s.cols, kChunkCols);
    const size_t copies = weight_bytes / bytes;
    fill_planes(weights, copies * bytes, s.rows * 31 + s.cols);
    auto q = alloc<int8_t>(padded);
    fill_random(reinterpret_cast<uint8_t*>(q.get()), padded, 7);
    std::vector<float> y(s.rows);
    AlignedBuffer tables;
    bench_op(rep, isas, "gemv", s, static_cast<double>(bytes), static_cast<double>(s.rows) * s.cols,
             [&](ThreadPool& pool, double seconds) {
               return measure_bandwidth(pool, weights, copies * bytes, seconds);
             },
             [&](ThreadPool& pool, double seconds) {
               return measure_call_bandwidth(pool, weights, bytes, copies, seconds);
             },
             [&](const Runtime& rt, size_t i) {
               const TernaryTarget target{TernaryView{weights + (i % copies) * bytes, s.rows, s.cols}, 1.f,
                                          y.data(), 0};
               ternary_gemv(rt, q.get(), &target, 1, tables);
             });
  }
}

// Streaming read bandwidth alone, over --weight-mib MiB, for callers that only need the
// memory roofline (the model benchmark's decode roofline).
void bench_bandwidth(Report& rep) {
  const size_t bytes = rep.opt.weight_mib << 20;
  auto buffer = alloc<uint8_t>(bytes);
  fill_random(buffer.get(), bytes, 17);
  for (size_t threads = 1; threads <= rep.opt.max_threads; ++threads) {
    ThreadPool pool(threads);
    const double gbps = measure_bandwidth(pool, buffer.get(), bytes, rep.opt.seconds);
    const double seconds = static_cast<double>(bytes) / (gbps * 1e9);
    rep.rows.push_back({"bandwidth", "-", std::to_string(rep.opt.weight_mib) + "MiB", threads, seconds, seconds,
                        static_cast<double>(bytes), 0, 0, 0});
  }
}

void bench_lm_head(Report& rep, const std::vector<std::string>& isas) {
  const Shape s = kLmHead;
  const double macs = static_cast<double>(s.rows) * s.cols;
  std::vector<float> x(s.cols), y(s.rows), row_scale(s.rows, 1.f);
  for (size_t i = 0; i < s.cols; ++i) x[i] = static_cast<float>(i % 17) * 0.01f;
  {
    const size_t n = s.rows * s.cols;
    auto w = alloc<f16_t>(n);
    for (size_t i = 0; i < n; ++i) w[i] = static_cast<f16_t>(0x3000 + (i * 7919) % 0x800);
    const uint8_t* bytes = reinterpret_cast<const uint8_t*>(w.get());
    bench_op(rep, isas, "lm_head_f16", s, 2.0 * n, macs,
             [&](ThreadPool& pool, double seconds) { return measure_bandwidth(pool, bytes, 2 * n, seconds); },
             nullptr,
             [&](const Runtime& rt, size_t) { matvec_f16(rt, w.get(), s.rows, s.cols, x.data(), y.data()); });
  }
  const size_t cols_padded = round_up(s.cols, 64), n = s.rows * cols_padded;
  auto w8 = alloc<int8_t>(n);
  fill_random(reinterpret_cast<uint8_t*>(w8.get()), n, 3);
  auto q = alloc<int8_t>(cols_padded);
  fill_random(reinterpret_cast<uint8_t*>(q.get()), cols_padded, 5);
  const uint8_t* bytes = reinterpret_cast<const uint8_t*>(w8.get());
  bench_op(rep, isas, "lm_head_i8", s, static_cast<double>(n), macs,
           [&](ThreadPool& pool, double seconds) { return measure_bandwidth(pool, bytes, n, seconds); }, nullptr,
           [&](const Runtime& rt, size_t) {
             matvec_i8(rt, w8.get(), s.rows, cols_padded, q.get(), row_scale.data(), 1.f, y.data());
           });
  // The 4-bit head decode ranks rows with (the int8 re-scoring of its top rows reads 0.1% as much).
  const size_t q4_cols = round_up(s.cols, kQ4BlockCols), q4_bytes = s.rows * q4_cols / 2;
  auto w4 = alloc<uint8_t>(q4_bytes);
  fill_random(w4.get(), q4_bytes, 4);
  auto q_q4 = alloc<int8_t>(q4_cols);
  fill_random(reinterpret_cast<uint8_t*>(q_q4.get()), q4_cols, 5);
  bench_op(rep, isas, "lm_head_q4", s, static_cast<double>(q4_bytes), macs,
           [&](ThreadPool& pool, double seconds) { return measure_bandwidth(pool, w4.get(), q4_bytes, seconds); },
           nullptr,
           [&](const Runtime& rt, size_t) {
             matvec_q4(rt, w4.get(), s.rows, q4_cols, q_q4.get(), row_scale.data(), 1.f, y.data());
           });
}

// One decode step's attention in one layer: 20 query heads over 5 KV heads of
// 128, t_len cached positions in the session's head-major f16 cache. Calls
// cycle over copies of K and V filling the buffer, so the cache comes from
// DRAM as in decode, where a whole step's weights stream through between two
// visits of a layer. Rows report the K and V bytes read and their fraction of
// the read bandwidth.
constexpr size_t kHeads = 20, kKvHeads = 5, kHeadDim = 128;
constexpr size_t kAttentionLengths[] = {64, 512, 4096};
constexpr size_t kMaxAttentionLayerBytes = 2 * kAttentionLengths[2] * kKvHeads * kHeadDim * sizeof(f16_t);

void bench_attention(Report& rep, const std::vector<std::string>& isas, uint8_t* buffer, size_t buffer_bytes) {
  for (size_t t_len : kAttentionLengths) {
    const size_t kv = t_len * kKvHeads * kHeadDim, layer_bytes = 2 * kv * sizeof(f16_t);
    const size_t copies = buffer_bytes / layer_bytes;
    f16_t* cache = reinterpret_cast<f16_t*>(buffer);
    for (size_t i = 0; i < copies * 2 * kv; ++i) cache[i] = static_cast<f16_t>(0x3000 + (i * 7919) % 0x800);
    const KvCacheLayout layout = {kHeadDim, t_len * kHeadDim};
    std::vector<float> q(kHeads * kHeadDim), out(q.size());
    for (size_t i = 0; i < q.size(); ++i) q[i] = static_cast<float>(i % 13) * 0.05f - 0.3f;
    AlignedBuffer scratch;
    bench_op(rep, isas, "attention", {t_len, kHeads * kHeadDim}, static_cast<double>(layer_bytes),
             2.0 * kHeads * t_len * kHeadDim,
             [&](ThreadPool& pool, double seconds) {
               return measure_bandwidth(pool, buffer, copies * layer_bytes, seconds);
             },
             [&](ThreadPool& pool, double seconds) {
               return measure_call_bandwidth(pool, buffer, layer_bytes, copies, seconds);
             },
             [&](const Runtime& rt, size_t i) {
               const f16_t* k = cache + (i % copies) * 2 * kv;
               attention(rt, q.data(), k, k + kv, layout, t_len, kHeads, kKvHeads, kHeadDim, out.data(), scratch);
             });
  }
}

void bench_gemm(Report& rep, std::vector<std::string> isas) {
  isas.erase(std::remove(isas.begin(), isas.end(), "scalar"), isas.end());  // seconds per call
  for (const Shape& s : kGemmShapes) {
    const size_t bytes = packed_bytes(s.rows, s.cols), padded = round_up(s.cols, kChunkCols);
    auto w = alloc<uint8_t>(bytes);
    fill_planes(w.get(), bytes, 11);
    const TernaryView view{w.get(), s.rows, s.cols};
    for (size_t m : kGemmTokens) {
      auto q = alloc<int8_t>(m * padded);
      fill_random(reinterpret_cast<uint8_t*>(q.get()), m * padded, 13);
      std::vector<float> act_scale(m, 1.f), y(m * s.rows);
      AlignedBuffer scratch;
      const TernaryTarget target{view, 1.f, y.data(), s.rows};
      bench_op(rep, isas, "gemm_m" + std::to_string(m), s, static_cast<double>(bytes),
               static_cast<double>(m) * s.rows * s.cols,
               [&](ThreadPool& pool, double seconds) { return gemm_reference(pool, seconds / 2); }, nullptr,
               [&](const Runtime& rt, size_t) {
                 ternary_gemm(rt, q.get(), padded, m, act_scale.data(), &target, 1, scratch);
               });
    }
  }
}

// ------------------------------------------------------------------ output

double weights_per_cycle(const Report& rep, const Row& r) {
  return r.macs_per_call / r.seconds_per_call / 1e9 / rep.ghz / static_cast<double>(r.threads);
}

void print_table(const Report& rep) {
  std::printf("cpu: %s\nclock: %.2f GHz (dependent-add chain)\n", cpu_features().c_str(), rep.ghz);
  std::printf("%s\nus/call: mean call of the fastest window; med us: the median call\n"
              "frac: GB/s (GMAC/s) of the fastest window against the read bandwidth of the same buffer\n"
              "(GEMV, LM head, attention) or the vpdpbusd zmm peak (GEMM), measured right before the row\n"
              "with the same threads (ref); call frac: the median call against the median call of a read\n"
              "of as many bytes per call, split the same way (call ref); each row is the median of %zu rounds\n",
              describe_off_cpu(rep.off_cpu, kOffCpuSeconds).c_str(), kRounds);
  std::printf("\n%-12s %-7s %-12s %3s %9s %9s %8s %9s %7s %7s %8s %9s %10s\n", "section", "isa", "shape", "thr",
              "us/call", "med us", "GB/s", "GMAC/s", "ref", "frac", "call ref", "call frac", "w/cyc/core");
  for (const Row& r : rep.rows) {
    std::printf("%-12s %-7s %-12s %3zu %9.1f %9.1f %8.2f %9.2f %7.1f %6.1f%%", r.section.c_str(), r.isa.c_str(),
                r.shape.c_str(), r.threads, r.seconds_per_call * 1e6, r.median_seconds_per_call * 1e6, r.gbps(),
                r.gmacs(), r.reference, 100 * fraction(r));
    if (r.call_reference > 0) std::printf(" %8.1f %8.1f%%", r.call_reference, 100 * call_fraction(r));
    else std::printf(" %8s %9s", "-", "-");
    std::printf(" %10.2f\n", weights_per_cycle(rep, r));
  }
}

void print_json(const Report& rep) {
  std::printf("{\n  \"cpu\": \"%s\",\n  \"ghz\": %.3f,\n  \"off_cpu\": [", cpu_features().c_str(), rep.ghz);
  for (size_t i = 0; i < rep.off_cpu.size(); ++i) {
    const OffCpu& o = rep.off_cpu[i];
    std::printf("%s{\"fraction\": %.4f, \"gaps\": %zu, \"median_gap_us\": %.1f, \"median_period_ms\": %.3f}",
                i ? ", " : "", o.fraction, o.gaps, o.median_gap * 1e6, o.median_period * 1e3);
  }
  std::printf("],\n  \"results\": [\n");
  for (size_t i = 0; i < rep.rows.size(); ++i) {
    const Row& r = rep.rows[i];
    std::printf("    {\"section\": \"%s\", \"isa\": \"%s\", \"shape\": \"%s\", \"threads\": %zu, "
                "\"us_per_call\": %.2f, \"median_us_per_call\": %.2f, \"gbps\": %.3f, \"gmacs\": %.3f, "
                "\"reference\": %.3f, \"fraction\": %.4f, \"call_reference\": %.3f, \"call_fraction\": %.4f, "
                "\"weights_per_cycle_per_core\": %.3f}%s\n",
                r.section.c_str(), r.isa.c_str(), r.shape.c_str(), r.threads, r.seconds_per_call * 1e6,
                r.median_seconds_per_call * 1e6, r.gbps(), r.gmacs(), r.reference, fraction(r), r.call_reference,
                call_fraction(r), weights_per_cycle(rep, r),
                i + 1 < rep.rows.size() ? "," : "");
  }
  std::printf("  ]\n}\n");
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "--json") o.json = true;
    else if (a == "--weight-mib" && has_value) o.weight_mib = std::strtoul(argv[++i], nullptr, 10);
    else if (a == "--seconds" && has_value) o.seconds = std::strtod(argv[++i], nullptr);
    else if (a == "--threads" && has_value) o.max_threads = std::max(1ul, std::strtoul(argv[++i], nullptr, 10));
    else if (a == "--only" && has_value && (std::string(argv[i + 1]) == "bandwidth" ||
                                            std::string(argv[i + 1]) == "gemv" ||
                                            std::string(argv[i + 1]) == "lm_head" ||
                                            std::string(argv[i + 1]) == "gemm" ||
                                            std::string(argv[i + 1]) == "attention"))
      o.only = argv[++i];
    else if (a == "--isa" && has_value) o.isa = argv[++i];
    else {
      std::fprintf(stderr,
                   "usage: bench_kernels [--json] [--weight-mib N] [--seconds S] [--threads T] "
                   "[--only bandwidth|gemv|lm_head|gemm|attention] [--isa NAME]\n");
      std::exit(2);
    }
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  Report rep;
  rep.opt = parse(argc, argv);
  std::vector<std::string> isas = runnable_isas();
  if (!rep.opt.isa.empty()) isas = {kernels_for(rep.opt.isa).isa_name};
  rep.ghz = measure_ghz();
  {
    ThreadPool pool(rep.opt.max_threads);
    rep.off_cpu = measure_off_cpu(Runtime{&kernels_for(isas.front()), &pool}, kOffCpuSeconds);
  }
  if (rep.opt.only == "bandwidth") bench_bandwidth(rep);
  // The buffer the GEMV weights and the attention caches cycle over: at least
  // one copy of the largest, and --weight-mib MiB so that calls stream from DRAM.
  size_t stream_bytes = std::max(rep.opt.weight_mib << 20, kMaxAttentionLayerBytes);
  for (const Shape& s : kGemvShapes) stream_bytes = std::max(stream_bytes, packed_bytes(s.rows, s.cols));
  Buffer<uint8_t> stream;
  if (rep.opt.runs("gemv") || rep.opt.runs("attention")) stream = alloc<uint8_t>(stream_bytes);
  if (rep.opt.runs("gemv")) bench_gemv(rep, isas, stream.get(), stream_bytes);
  if (rep.opt.runs("lm_head")) bench_lm_head(rep, isas);
  if (rep.opt.runs("gemm")) bench_gemm(rep, isas);
  if (rep.opt.runs("attention")) bench_attention(rep, isas, stream.get(), stream_bytes);
  if (rep.opt.json) print_json(rep);
  else print_table(rep);
  return 0;
}
