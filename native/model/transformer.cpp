#include "transformer.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace bitnet {

namespace {

// Prompts are pushed through the layers in slices of this many tokens, which
// bounds scratch memory while keeping GEMM batches large.
constexpr size_t kMaxBatch = 256;

void require(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument("model weights: " + what);
}

void check_ternary(const TernaryWeight& t, size_t rows, size_t cols, const std::string& name) {
  require(t.w.planes != nullptr, name + " is missing");
  require(t.w.rows == rows && t.w.cols == cols,
          name + " is " + std::to_string(t.w.rows) + "x" + std::to_string(t.w.cols) + ", expected " +
              std::to_string(rows) + "x" + std::to_string(cols));
  require(std::isfinite(t.scale) && t.scale > 0.f, name + " has an invalid scale");
}

}  // namespace

Transformer::Transformer(ModelWeights weights, size_t max_context)
    : w_(std::move(weights)), max_context_(max_context) {
  const ModelDims& d = w_.dims;
  require(d.hidden && d.intermediate && d.layers && d.heads && d.kv_heads && d.head_dim && d.vocab,
          "every dimension must be positive");
  require(d.heads % d.kv_heads == 0, "heads must be a multiple of kv_heads");
  require(d.head_dim % 2 == 0, "head_dim must be even for rotate-half RoPE");
  require(max_context > 0, "max_context must be positive");
  require(w_.layers.size() == d.layers, "expected " + std::to_string(d.layers) + " layers, got " +
                                            std::to_string(w_.layers.size()));
  require(w_.embedding && w_.final_norm, "embedding and final norm are required");
  require(w_.head.f16 || (w_.head.i8 && w_.head.i8_row_scale && w_.head.i8_cols >= d.hidden &&
                          w_.head.i8_cols % 64 == 0),
          "LM head needs f16 rows, or int8 rows (cols padded to 64) with row scales");
  require(!w_.head.q4 || (w_.head.i8 && w_.head.q4_row_scale && w_.head.q4_cols >= d.hidden &&
                          w_.head.q4_cols % kQ4BlockCols == 0),
          "a 4-bit LM head needs row scales, cols padded to " + std::to_string(kQ4BlockCols) +
              " and the int8 rows it is re-scored with");
  const size_t q_dim = d.heads * d.head_dim, kv_dim = d.kv_heads * d.head_dim;
  for (size_t i = 0; i < d.layers; ++i) {
    const LayerWeights& l = w_.layers[i];
    const std::string p = "layer " + std::to_string(i) + " ";
    require(l.attn_norm && l.ffn_norm, p + "norms are missing");
    check_ternary(l.q, q_dim, d.hidden, p + "q_proj");
    check_ternary(l.k, kv_dim, d.hidden, p + "k_proj");
    check_ternary(l.v, kv_dim, d.hidden, p + "v_proj");
    check_ternary(l.o, d.hidden, q_dim, p + "o_proj");
    check_ternary(l.gate, d.intermediate, d.hidden, p + "gate_proj");
    check_ternary(l.up, d.intermediate, d.hidden, p + "up_proj");
    check_ternary(l.down, d.hidden, d.intermediate, p + "down_proj");
  }
  // HF rotary embedding: inv_freq and angles in f32, as the checkpoint was trained.
  const size_t half = d.head_dim / 2;
  std::vector<float> inv_freq(half);
  for (size_t i = 0; i < half; ++i)
    inv_freq[i] = 1.f / std::pow(d.rope_theta, static_cast<float>(2 * i) / static_cast<float>(d.head_dim));
  rope_cos_.resize(max_context * half);
  rope_sin_.resize(max_context * half);
  for (size_t p = 0; p < max_context; ++p) {
    for (size_t i = 0; i < half; ++i) {
      const float angle = static_cast<float>(p) * inv_freq[i];
      rope_cos_[p * half + i] = static_cast<float>(std::cos(static_cast<double>(angle)));
      rope_sin_[p * half + i] = static_cast<float>(std::sin(static_cast<double>(angle)));
    }
  }
}

Session::Session(const Transformer& model, size_t context) : model_(model), context_(context) {
  if (context == 0 || context > model.max_context())
    throw std::out_of_range("context must be between 1 and " + std::to_string(model.max_context()));
  const ModelDims& d = model.dims();
  kv_cache_ = ZeroedPages(2 * d.layers * context * d.kv_heads * d.head_dim * sizeof(f16_t));
}

void Session::truncate(size_t keep) {
  if (keep > pos_) throw std::out_of_range("cannot keep more tokens than the cache holds");
  pos_ = keep;
  // A new conversation gives the old one's pages back. A shorter prefix keeps
  // them: the tokens that follow write those positions again (bench_decode
  // drops one token per step).
  if (keep == 0) kv_cache_.release();
}

void Session::reserve_batch(size_t n) {
  if (n <= batch_capacity_) return;
  const ModelDims& d = model_.dims();
  const size_t q_dim = d.heads * d.head_dim, kv_dim = d.kv_heads * d.head_dim;
  const size_t widest = std::max({d.hidden, d.intermediate, q_dim});
  h_.resize(n * d.hidden);
  xn_.resize(n * widest);
  q_.resize(n * q_dim);
  k_.resize(n * kv_dim);
  v_.resize(n * kv_dim);
  attn_.resize(n * q_dim);
  proj_.resize(n * d.hidden);
  gate_.resize(n * d.intermediate);
  up_.resize(n * d.intermediate);
  q8_.resize(n * round_up(widest, kChunkCols));
  act_scale_.resize(n);
  batch_capacity_ = n;
}

void Session::forward(const Runtime& rt, const int32_t* tokens, size_t n, float* logits, bool all_logits) {
  const ModelDims& d = model_.dims();
  if (n == 0) return;
  if (n > context_ - pos_)
    throw std::out_of_range("context overflow: " + std::to_string(pos_) + " cached + " +
                            std::to_string(n) + " new tokens exceed the context of " +
                            std::to_string(context_));
  for (size_t i = 0; i < n; ++i)
    if (tokens[i] < 0 || static_cast<size_t>(tokens[i]) >= d.vocab)
      throw std::invalid_argument("token id " + std::to_string(tokens[i]) + " at index " +
                                  std::to_string(i) + " is outside the vocabulary of " +
                                  std::to_string(d.vocab));
  const KernelTable& k = *rt.kernels;
  for (size_t done = 0; done < n; done += kMaxBatch) {
    const size_t m = std::min(kMaxBatch, n - done);
    reserve_batch(m);
    embed(k, tokens + done, m);
    for (size_t l = 0; l < d.layers; ++l) {
      attention_block(rt, model_.weights().layers[l], l, m);
      ffn_block(rt, model_.weights().layers[l], m);
    }
    pos_ += m;
    // Final norm and LM head: every row if asked, else only the prompt's last.
    const size_t first = all_logits ? 0 : (done + m == n ? m - 1 : m);
    for (size_t i = first; i < m; ++i) {
      float* hi = h_.data() + i * d.hidden;
      k.rmsnorm(hi, model_.weights().final_norm, d.hidden, d.rms_eps, hi);
      lm_head(rt, hi, logits + (all_logits ? (done + i) * d.vocab : 0), all_logits);
    }
  }
}

void Session::embed(const KernelTable& k, const int32_t* tokens, size_t n) {
  const ModelDims& d = model_.dims();
  for (size_t i = 0; i < n; ++i)
    k.f16_to_f32(model_.weights().embedding + static_cast<size_t>(tokens[i]) * d.hidden, d.hidden,
                 h_.data() + i * d.hidden);
}

size_t Session::norm_and_quantize(const KernelTable& k, const float* x, size_t n, size_t cols,
                                  const float* g, size_t padded) {
  const float eps = model_.dims().rms_eps;
  for (size_t i = 0; i < n; ++i) {
    const float* row = x + i * cols;
    if (g) {
      k.rmsnorm(row, g, cols, eps, xn_.data() + i * cols);
      row = xn_.data() + i * cols;
    }
    act_scale_[i] = quantize_activations(k, row, cols, q8_.data() + i * padded, padded);
  }
  return padded;
}

void Session::project(const Runtime& rt, size_t n, size_t q_stride, TernaryTarget* targets, size_t count) {
  if (n == 1) {
    for (size_t t = 0; t < count; ++t) targets[t].out_scale /= act_scale_[0];
    ternary_gemv(rt, q8_.data(), targets, count, tables_);
  } else {
    ternary_gemm(rt, q8_.data(), q_stride, n, act_scale_.data(), targets, count, scratch_);
  }
}

void Session::attention_block(const Runtime& rt, const LayerWeights& lw, size_t layer, size_t n) {
  const ModelDims& d = model_.dims();
  const KernelTable& k = *rt.kernels;
  const size_t q_dim = d.heads * d.head_dim, kv_dim = d.kv_heads * d.head_dim;

  // a = RMSNorm(h); q, k, v = BitLinear(a) sharing one quantization.
  const size_t stride = norm_and_quantize(k, h_.data(), n, d.hidden, lw.attn_norm, lw.q.w.padded_cols());
  TernaryTarget qkv[3] = {{lw.q.w, lw.q.scale, q_.data(), q_dim},
                          {lw.k.w, lw.k.scale, k_.data(), kv_dim},
                          {lw.v.w, lw.v.scale, v_.data(), kv_dim}};
  project(rt, n, stride, qkv, 3);

  f16_t* k_layer = static_cast<f16_t*>(kv_cache_.data()) + layer * context_ * kv_dim;
  f16_t* v_layer = k_layer + d.layers * context_ * kv_dim;
  const KvCacheLayout layout = {d.head_dim, context_ * d.head_dim};  // head-major
  for (size_t i = 0; i < n; ++i) {
    const size_t pos = pos_ + i;
    k.rope(q_.data() + i * q_dim, d.heads, d.head_dim, model_.rope_cos(pos), model_.rope_sin(pos));
    k.rope(k_.data() + i * kv_dim, d.kv_heads, d.head_dim, model_.rope_cos(pos), model_.rope_sin(pos));
    for (size_t j = 0; j < d.kv_heads; ++j) {
      const size_t at = j * layout.head_stride + pos * layout.position_stride;
      k.f32_to_f16(k_.data() + i * kv_dim + j * d.head_dim, d.head_dim, k_layer + at);
      k.f32_to_f16(v_.data() + i * kv_dim + j * d.head_dim, d.head_dim, v_layer + at);
    }
  }
  // Token i of the batch sees the cache up to and including its own position.
  for (size_t i = 0; i < n; ++i)
    attention(rt, q_.data() + i * q_dim, k_layer, v_layer, layout, pos_ + i + 1, d.heads, d.kv_heads,
              d.head_dim, attn_.data() + i * q_dim, attn_scratch_);

  // h += BitLinear(SubNorm(attn); o_proj)
  const size_t o_stride =
      norm_and_quantize(k, attn_.data(), n, q_dim, lw.attn_sub_norm, lw.o.w.padded_cols());
  TernaryTarget o = {lw.o.w, lw.o.scale, proj_.data(), d.hidden};
  project(rt, n, o_stride, &o, 1);
  k.add_inplace(h_.data(), proj_.data(), n * d.hidden);
}

void Session::ffn_block(const Runtime& rt, const LayerWeights& lw, size_t n) {
  const ModelDims& d = model_.dims();
  const KernelTable& k = *rt.kernels;
  const size_t stride = norm_and_quantize(k, h_.data(), n, d.hidden, lw.ffn_norm, lw.gate.w.padded_cols());
  TernaryTarget gu[2] = {{lw.gate.w, lw.gate.scale, gate_.data(), d.intermediate},
                         {lw.up.w, lw.up.scale, up_.data(), d.intermediate}};
  project(rt, n, stride, gu, 2);
  if (d.activation == FfnActivation::Relu2)
    k.relu2_gate(gate_.data(), up_.data(), n * d.intermediate, gate_.data());
  else
    k.silu_gate(gate_.data(), up_.data(), n * d.intermediate, gate_.data());
  const size_t d_stride =
      norm_and_quantize(k, gate_.data(), n, d.intermediate, lw.ffn_sub_norm, lw.down.w.padded_cols());
  TernaryTarget down = {lw.down.w, lw.down.scale, proj_.data(), d.hidden};
  project(rt, n, d_stride, &down, 1);
  k.add_inplace(h_.data(), proj_.data(), n * d.hidden);
}

void Session::lm_head(const Runtime& rt, const float* h, float* logits, bool exact) {
  const ModelDims& d = model_.dims();
  const LmHead& head = model_.weights().head;
  if (head.f16) {
    matvec_f16(rt, head.f16, d.vocab, d.hidden, h, logits);
    return;
  }
  // One quantized h serves both heads: zeros past hidden, up to the longer row.
  const size_t q_len = std::max(head.i8_cols, head.q4_cols);
  head_q8_.resize(q_len);
  const float inv_s = 1.f / quantize_activations(*rt.kernels, h, d.hidden, head_q8_.data(), q_len);
  if (exact || !head.q4) {
    matvec_i8(rt, head.i8, d.vocab, head.i8_cols, head_q8_.data(), head.i8_row_scale, inv_s, logits);
    return;
  }
  matvec_q4(rt, head.q4, d.vocab, head.q4_cols, head_q8_.data(), head.q4_row_scale, inv_s, logits);
  const size_t k = std::min(kLmHeadExactRows, d.vocab);
  head_candidates_.resize(k);
  top_k(rt, logits, d.vocab, k, head_candidates_.data(), scratch_);
  // The same kernel on the same q as the full int8 head: bit-identical values.
  for (const uint32_t r : head_candidates_)
    rt.kernels->matvec_i8(head.i8, head.i8_cols, head_q8_.data(), head.i8_row_scale, inv_s, logits, r, r + 1);
}

}  // namespace bitnet
