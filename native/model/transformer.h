// The BitNet b1.58 forward pass (reference section 1.3) over mapped weights,
// read top to bottom in transformer.cpp. One Transformer is shared by every
// session of a loaded model; each Session owns its KV cache and scratch, so
// sessions never touch each other's state.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "file_memory.h"
#include "ops.h"

namespace bitnet {

enum class FfnActivation { Relu2, Silu };

struct ModelDims {
  size_t hidden = 0;        // d_model, e.g. 2560
  size_t intermediate = 0;  // FFN width, e.g. 6912
  size_t layers = 0;
  size_t heads = 0;         // query heads, e.g. 20
  size_t kv_heads = 0;      // e.g. 5 (GQA group = heads / kv_heads)
  size_t head_dim = 0;      // e.g. 128
  size_t vocab = 0;
  float rope_theta = 10000.f;
  float rms_eps = 1e-5f;
  FfnActivation activation = FfnActivation::Relu2;
};

// One BitLinear: packed planes plus its per-tensor weight scale beta.
struct TernaryWeight {
  TernaryView w;
  float scale = 0.f;
};

struct LayerWeights {
  const float* attn_norm = nullptr;      // [hidden]
  TernaryWeight q, k, v, o;              // q: [heads*head_dim, hidden], k/v: [kv_heads*head_dim, hidden]
  const float* attn_sub_norm = nullptr;  // [heads*head_dim] or nullptr (Llama-style BitNet)
  const float* ffn_norm = nullptr;       // [hidden]
  TernaryWeight gate, up, down;          // gate/up: [intermediate, hidden], down: [hidden, intermediate]
  const float* ffn_sub_norm = nullptr;   // [intermediate] or nullptr
};

// Rows of the int8 LM head recomputed exactly after the 4-bit head ranked
// every row (the candidates of a decode step, see Session::lm_head).
constexpr size_t kLmHeadExactRows = 64;

// The LM head: f16 rows, or int8 rows with one float scale per row, optionally
// with a 4-bit copy that decode reads instead of the int8 rows.
struct LmHead {
  const f16_t* f16 = nullptr;        // [vocab][hidden], when set
  const int8_t* i8 = nullptr;        // [vocab][i8_cols], when f16 is null
  const float* i8_row_scale = nullptr;  // [vocab]
  size_t i8_cols = 0;                // hidden rounded up to 64, zero-padded
  const uint8_t* q4 = nullptr;       // [vocab][q4_cols / 2] nibbles (matvec_q4), or null
  const float* q4_row_scale = nullptr;  // [vocab]
  size_t q4_cols = 0;                // hidden rounded up to kQ4BlockCols, zero-padded
};

struct ModelWeights {
  ModelDims dims;
  const f16_t* embedding = nullptr;  // [vocab][hidden]
  const float* final_norm = nullptr; // [hidden]
  std::vector<LayerWeights> layers;
  LmHead head;
};

class Transformer {
 public:
  // Validates dims against the weights' shapes; throws std::invalid_argument
  // naming the first mismatch. Precomputes RoPE tables up to max_context.
  Transformer(ModelWeights weights, size_t max_context);

  const ModelDims& dims() const { return w_.dims; }
  const ModelWeights& weights() const { return w_; }
  size_t max_context() const { return max_context_; }
  const float* rope_cos(size_t pos) const { return rope_cos_.data() + pos * (w_.dims.head_dim / 2); }
  const float* rope_sin(size_t pos) const { return rope_sin_.data() + pos * (w_.dims.head_dim / 2); }

 private:
  ModelWeights w_;
  size_t max_context_;
  std::vector<float> rope_cos_, rope_sin_;  // [max_context][head_dim / 2]
};

class Session {
 public:
  // context: KV cache capacity in tokens (<= model.max_context()).
  Session(const Transformer& model, size_t context);

  const Transformer& model() const { return model_; }
  size_t context() const { return context_; }
  size_t position() const { return pos_; }  // tokens already in the KV cache
  // What the KV cache may grow to; its pages are committed as tokens fill them.
  size_t kv_cache_bytes() const { return kv_cache_.size(); }
  // Forgets cached tokens from position `keep` on (keep <= position()); with
  // keep = 0 the cache's pages go back to the OS.
  void truncate(size_t keep);

  // Runs tokens[0..n) at positions position()..position()+n-1 through the
  // model, appending to the KV cache. Writes the logits of the last token to
  // logits (vocab floats), or of every token (n * vocab) when all_logits.
  // With a 4-bit head the last-token logits are exact only for the
  // kLmHeadExactRows highest rows (see lm_head); all_logits are all exact.
  // Throws std::out_of_range if the context would overflow and
  // std::invalid_argument for a token id >= vocab; the cache is unchanged then.
  void forward(const Runtime& rt, const int32_t* tokens, size_t n, float* logits, bool all_logits);

 private:
  void embed(const KernelTable& k, const int32_t* tokens, size_t n);
  void attention_block(const Runtime& rt, const LayerWeights& lw, size_t layer, size_t n);
  void ffn_block(const Runtime& rt, const LayerWeights& lw, size_t n);
  // exact: every row from the int8 (or f16) head. Otherwise, with a 4-bit
  // head, every row from it and then the kLmHeadExactRows highest recomputed
  // from the int8 rows: the argmax and the top of the distribution are exact,
  // the rest of the vocabulary keeps the 4-bit approximation.
  void lm_head(const Runtime& rt, const float* h, float* logits, bool exact);
  // Normalizes n rows of x (width cols, row stride cols) with g, quantizes each
  // row into q_ (stride padded) and sets act_scale_[i]; returns the stride.
  size_t norm_and_quantize(const KernelTable& k, const float* x, size_t n, size_t cols,
                           const float* g, size_t padded);
  void project(const Runtime& rt, size_t n, size_t q_stride, TernaryTarget* targets, size_t count);

  const Transformer& model_;
  size_t context_;
  size_t pos_ = 0;
  // f16 K for every layer, then V for every layer: [2][layers][kv_heads][context][head_dim], head-major.
  ZeroedPages kv_cache_;
  // Scratch, sized for the largest batch seen so far.
  size_t batch_capacity_ = 0;
  std::vector<float> h_, xn_, q_, k_, v_, attn_, proj_, gate_, up_;
  std::vector<int8_t> q8_;
  std::vector<float> act_scale_;
  std::vector<int8_t> head_q8_;
  std::vector<uint32_t> head_candidates_;
  AlignedBuffer tables_, scratch_, attn_scratch_;
  void reserve_batch(size_t n);
};

}  // namespace bitnet
