// Whole-step benchmark: a random model of the exact bitnet-b1.58-2B-4T shape
// (30 layers, hidden 2560, FFN 6912, 20/5 heads of 128, vocab 128256, int8 LM
// head, or with --lm-head q4 the 4-bit head whose top rows decode re-scores
// from the int8 rows) run through Session::forward. Reports decode tokens/s with 64 and 512
// tokens in the KV cache, prefill tokens/s for a 128-token prompt, at 1..T
// threads, and the decode roofline: the read bandwidth measured right before
// with the same threads divided by the bytes one decode step reads.
//
//   bench_decode [--threads T] [--seconds S] [--isa NAME] [--lm-head int8|q4]
#include <cstdio>
#include <string>
#include <vector>

#include "bench_common.h"
#include "isa.h"
#include "ops.h"
#include "transformer.h"

using namespace bitnet;
using namespace bitnet::bench;

namespace {

struct Options {
  size_t max_threads = 2;
  double seconds = 3;  // minimum measured time per row
  std::string isa;     // empty: the best this CPU runs
  bool q4_head = false;  // --lm-head q4
};

ModelDims dims_2b4t() {
  ModelDims d;
  d.hidden = 2560;
  d.intermediate = 6912;
  d.layers = 30;
  d.heads = 20;
  d.kv_heads = 5;
  d.head_dim = 128;
  d.vocab = 128256;
  d.rope_theta = 500000.f;
  d.activation = FfnActivation::Relu2;
  return d;
}

// Owns every buffer the ModelWeights views point into.
struct RandomModel {
  ModelWeights weights;
  std::vector<Buffer<uint8_t>> ternary;
  Buffer<f16_t> embedding;
  Buffer<int8_t> head;
  Buffer<uint8_t> head_q4;
  std::vector<float> ones, head_scale;
  size_t streamed_bytes = 0;  // ternary planes + LM head: what every decode step reads

  // A packed random ternary matrix; layers use distinct copies of one matrix
  // per shape so that building 1.2 GB of weights takes a fraction of a second.
  TernaryWeight matrix(const std::vector<uint8_t>& packed, size_t rows, size_t cols) {
    auto buf = alloc<uint8_t>(packed.size());
    std::memcpy(buf.get(), packed.data(), packed.size());
    const TernaryWeight w{TernaryView{buf.get(), rows, cols}, 0.02f};
    ternary.push_back(std::move(buf));
    streamed_bytes += packed.size();
    return w;
  }
};

std::vector<uint8_t> random_packed(size_t rows, size_t cols, uint64_t seed) {
  std::vector<int8_t> w(rows * cols);
  for (auto& x : w) x = static_cast<int8_t>(next_random(seed) % 3) - 1;
  std::vector<uint8_t> packed(packed_bytes(rows, cols));
  pack_ternary(w.data(), rows, cols, packed.data());
  return packed;
}

void build(RandomModel& m, bool q4_head) {
  const ModelDims d = dims_2b4t();
  const size_t q_dim = d.heads * d.head_dim, kv_dim = d.kv_heads * d.head_dim;
  const auto wq = random_packed(q_dim, d.hidden, 1), wkv = random_packed(kv_dim, d.hidden, 2);
  const auto wo = random_packed(d.hidden, q_dim, 3), wff = random_packed(d.intermediate, d.hidden, 4);
  const auto wdown = random_packed(d.hidden, d.intermediate, 5);
  m.ones.assign(std::max(d.hidden, d.intermediate), 1.f);
  m.weights.dims = d;
  for (size_t l = 0; l < d.layers; ++l) {
    LayerWeights lw;
    lw.attn_norm = lw.ffn_norm = lw.attn_sub_norm = lw.ffn_sub_norm = m.ones.data();
    lw.q = m.matrix(wq, q_dim, d.hidden);
    lw.k = m.matrix(wkv, kv_dim, d.hidden);
    lw.v = m.matrix(wkv, kv_dim, d.hidden);
    lw.o = m.matrix(wo, d.hidden, q_dim);
    lw.gate = m.matrix(wff, d.intermediate, d.hidden);
    lw.up = m.matrix(wff, d.intermediate, d.hidden);
    lw.down = m.matrix(wdown, d.hidden, d.intermediate);
    m.weights.layers.push_back(lw);
  }
  const size_t emb = d.vocab * d.hidden;
  m.embedding = alloc<f16_t>(emb);
  uint64_t seed = 6;
  for (size_t i = 0; i < emb; ++i) m.embedding[i] = static_cast<f16_t>(0x2000 + next_random(seed) % 0x1000);
  const size_t head_cols = round_up(d.hidden, 64);
  m.head = alloc<int8_t>(d.vocab * head_cols);
  fill_random(reinterpret_cast<uint8_t*>(m.head.get()), d.vocab * head_cols, 7);
  m.head_scale.assign(d.vocab, 1e-3f);
  if (q4_head) {
    // Decode reads the 4-bit rows and scales, then kLmHeadExactRows int8 rows and scales.
    const size_t q4_cols = round_up(d.hidden, kQ4BlockCols);
    m.head_q4 = alloc<uint8_t>(d.vocab * q4_cols / 2);
    fill_random(m.head_q4.get(), d.vocab * q4_cols / 2, 8);
    m.weights.head.q4 = m.head_q4.get();
    m.weights.head.q4_row_scale = m.head_scale.data();
    m.weights.head.q4_cols = q4_cols;
    m.streamed_bytes += d.vocab * (q4_cols / 2 + sizeof(float)) + kLmHeadExactRows * (head_cols + sizeof(float));
  } else {
    m.streamed_bytes += d.vocab * (head_cols + sizeof(float));
  }
  m.weights.embedding = m.embedding.get();
  m.weights.final_norm = m.ones.data();
  m.weights.head.i8 = m.head.get();
  m.weights.head.i8_row_scale = m.head_scale.data();
  m.weights.head.i8_cols = head_cols;
}

std::vector<int32_t> tokens(size_t n, uint64_t seed, size_t vocab) {
  std::vector<int32_t> t(n);
  for (auto& x : t) x = static_cast<int32_t>(next_random(seed) % vocab);
  return t;
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "--threads" && has_value) o.max_threads = std::max(1ul, std::strtoul(argv[++i], nullptr, 10));
    else if (a == "--seconds" && has_value) o.seconds = std::strtod(argv[++i], nullptr);
    else if (a == "--isa" && has_value) o.isa = argv[++i];
    else if (a == "--lm-head" && has_value && (argv[i + 1] == std::string("q4") || argv[i + 1] == std::string("int8")))
      o.q4_head = argv[++i] == std::string("q4");
    else {
      std::fprintf(stderr, "usage: bench_decode [--threads T] [--seconds S] [--isa NAME] [--lm-head int8|q4]\n");
      std::exit(2);
    }
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  const Options opt = parse(argc, argv);
  const KernelTable& kernels = opt.isa.empty() ? active_kernels() : kernels_for(opt.isa);
  RandomModel model;
  build(model, opt.q4_head);
  const ModelDims& d = model.weights.dims;
  const size_t kContexts[] = {64, 512};
  constexpr size_t kPrompt = 128;
  const Transformer transformer(model.weights, 1024);
  std::vector<float> logits(d.vocab);
  // KV cache bytes one decode step reads per cached token: K and V of every layer.
  const size_t kv_bytes_per_token = 2 * d.layers * d.kv_heads * d.head_dim * sizeof(f16_t);

  std::printf("isa: %s, model: 2B4T shape, %.0f MB of ternary planes + %s LM head read per token\n",
              kernels.isa_name, static_cast<double>(model.streamed_bytes) / 1e6,
              opt.q4_head ? "4-bit (top rows re-scored from int8)" : "int8");
  {
    ThreadPool pool(opt.max_threads);
    std::printf("%s\n", describe_off_cpu(measure_off_cpu(Runtime{&kernels, &pool}, 0.5), 0.5).c_str());
  }
  std::printf("\n%-8s %3s %7s %10s %9s %9s %10s %8s\n", "run", "thr", "context", "ms/token", "tok/s",
              "read GB/s", "roofline", "of roof");
  for (size_t threads = 1; threads <= opt.max_threads; ++threads) {
    ThreadPool pool(threads);
    const Runtime rt{&kernels, &pool};
    for (size_t ctx : kContexts) {
      Session session(transformer, ctx + 1);
      const auto prompt = tokens(ctx, ctx, d.vocab);
      session.forward(rt, prompt.data(), ctx, logits.data(), false);
      // The embedding table (657 MB) is far larger than the caches.
      const double bw = measure_bandwidth(pool, reinterpret_cast<const uint8_t*>(model.embedding.get()),
                                          d.vocab * d.hidden * sizeof(f16_t), 1.0);
      const double t = time_calls(opt.seconds, [&](size_t i) {
        session.truncate(ctx);
        const int32_t tok = static_cast<int32_t>(i % d.vocab);
        session.forward(rt, &tok, 1, logits.data(), false);
      });
      const double bytes = static_cast<double>(model.streamed_bytes + ctx * kv_bytes_per_token);
      const double roof = bw * 1e9 / bytes;
      std::printf("%-8s %3zu %7zu %10.2f %9.1f %9.1f %10.1f %7.1f%%\n", "decode", threads, ctx, t * 1e3,
                  1 / t, bw, roof, 100 / t / roof);
    }
    Session session(transformer, kPrompt);
    const auto prompt = tokens(kPrompt, 99, d.vocab);
    const double t = time_calls(opt.seconds, [&](size_t) {
      session.truncate(0);
      session.forward(rt, prompt.data(), kPrompt, logits.data(), false);
    });
    std::printf("%-8s %3zu %7zu %10.2f %9.1f\n", "pp128", threads, kPrompt, t * 1e3 / kPrompt, kPrompt / t);
  }
  return 0;
}
