// The native forward pass against a plain reference written from reference
// section 1.3 with unpacked int8 weights and naive loops, plus the properties
// generation relies on: prefill == token-by-token decode, bit for bit, and
// identical logits for any thread count.
#include <cmath>
#include <cstring>
#include <memory>
#include <stdexcept>

#include "check.h"
#include "transformer.h"

using namespace bitnet;

namespace {

struct Matrix {
  std::vector<int8_t> w;  // logical [rows][cols]
  std::shared_ptr<AlignedBuffer> packed;  // kernels require kWeightAlign-aligned planes
  size_t rows, cols;
  float scale;
};

struct TinyModel {
  ModelDims d;
  std::vector<f16_t> embedding;
  std::vector<float> final_norm;
  struct Layer {
    std::vector<float> attn_norm, attn_sub_norm, ffn_norm, ffn_sub_norm;
    Matrix q, k, v, o, gate, up, down;
  };
  std::vector<Layer> layers;
  std::vector<int8_t> head_i8;
  std::vector<float> head_scale;
  size_t head_cols = 0;

  ModelWeights weights(bool int8_head, bool sub_norms) const {
    ModelWeights w;
    w.dims = d;
    w.embedding = embedding.data();
    w.final_norm = final_norm.data();
    auto view = [](const Matrix& m) { return TernaryWeight{TernaryView{m.packed->data(), m.rows, m.cols}, m.scale}; };
    for (const Layer& l : layers) {
      LayerWeights lw;
      lw.attn_norm = l.attn_norm.data();
      lw.ffn_norm = l.ffn_norm.data();
      lw.attn_sub_norm = sub_norms ? l.attn_sub_norm.data() : nullptr;
      lw.ffn_sub_norm = sub_norms ? l.ffn_sub_norm.data() : nullptr;
      lw.q = view(l.q), lw.k = view(l.k), lw.v = view(l.v), lw.o = view(l.o);
      lw.gate = view(l.gate), lw.up = view(l.up), lw.down = view(l.down);
      w.layers.push_back(lw);
    }
    if (int8_head) {
      w.head.i8 = head_i8.data();
      w.head.i8_row_scale = head_scale.data();
      w.head.i8_cols = head_cols;
    } else {
      w.head.f16 = embedding.data();
    }
    return w;
  }
};

Matrix random_matrix(size_t rows, size_t cols, std::mt19937& rng) {
  Matrix m{std::vector<int8_t>(rows * cols), std::make_shared<AlignedBuffer>(), rows, cols,
           0.5f + (rng() % 100) / 100.f};
  for (auto& x : m.w) x = static_cast<int8_t>(static_cast<int>(rng() % 3) - 1);
  pack_ternary(m.w.data(), rows, cols, m.packed->reserve(packed_bytes(rows, cols)));
  return m;
}

std::vector<float> random_floats(size_t n, std::mt19937& rng, float lo, float hi) {
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}

TinyModel make_model(FfnActivation act) {
  std::mt19937 rng(42);
  TinyModel m;
  m.d.hidden = 96;
  m.d.intermediate = 160;
  m.d.layers = 2;
  m.d.heads = 4;
  m.d.kv_heads = 2;
  m.d.head_dim = 24;
  m.d.vocab = 70;
  m.d.rope_theta = 10000.f;
  m.d.activation = act;
  for (float x : random_floats(m.d.vocab * m.d.hidden, rng, -1.f, 1.f)) m.embedding.push_back(f32_to_f16_scalar(x));
  m.final_norm = random_floats(m.d.hidden, rng, 0.5f, 1.5f);
  const size_t qd = m.d.heads * m.d.head_dim, kvd = m.d.kv_heads * m.d.head_dim;
  for (size_t i = 0; i < m.d.layers; ++i) {
    TinyModel::Layer l;
    l.attn_norm = random_floats(m.d.hidden, rng, 0.5f, 1.5f);
    l.attn_sub_norm = random_floats(qd, rng, 0.5f, 1.5f);
    l.ffn_norm = random_floats(m.d.hidden, rng, 0.5f, 1.5f);
    l.ffn_sub_norm = random_floats(m.d.intermediate, rng, 0.5f, 1.5f);
    l.q = random_matrix(qd, m.d.hidden, rng);
    l.k = random_matrix(kvd, m.d.hidden, rng);
    l.v = random_matrix(kvd, m.d.hidden, rng);
    l.o = random_matrix(m.d.hidden, qd, rng);
    l.gate = random_matrix(m.d.intermediate, m.d.hidden, rng);
    l.up = random_matrix(m.d.intermediate, m.d.hidden, rng);
    l.down = random_matrix(m.d.hidden, m.d.intermediate, rng);
    m.layers.push_back(std::move(l));
  }
  // int8 head: per-row absmax quantization of the (tied) embedding.
  m.head_cols = round_up(m.d.hidden, 64);
  m.head_i8.assign(m.d.vocab * m.head_cols, 0);
  for (size_t r = 0; r < m.d.vocab; ++r) {
    float mx = 0;
    for (size_t c = 0; c < m.d.hidden; ++c) mx = std::max(mx, std::fabs(f16_to_f32_scalar(m.embedding[r * m.d.hidden + c])));
    m.head_scale.push_back(mx / 127.f);
    for (size_t c = 0; c < m.d.hidden; ++c)
      m.head_i8[r * m.head_cols + c] = static_cast<int8_t>(std::nearbyint(f16_to_f32_scalar(m.embedding[r * m.d.hidden + c]) * 127.f / mx));
  }
  return m;
}

// ---- the plain reference (float everywhere except BitLinear's int8 input) ----
std::vector<float> ref_rmsnorm(const std::vector<float>& x, const std::vector<float>& g, float eps) {
  double ss = 0;
  for (float v : x) ss += double(v) * v;
  const double inv = 1.0 / std::sqrt(ss / x.size() + eps);
  std::vector<float> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = float(x[i] * inv * g[i]);
  return y;
}

std::vector<float> ref_bitlinear(const Matrix& m, const std::vector<float>& x) {
  double mx = 1e-5;
  for (float v : x) mx = std::max(mx, double(std::fabs(v)));
  const double s = 127.0 / mx;
  std::vector<float> y(m.rows);
  for (size_t r = 0; r < m.rows; ++r) {
    double acc = 0;
    for (size_t c = 0; c < m.cols; ++c) acc += m.w[r * m.cols + c] * std::max(-128.0, std::min(127.0, std::nearbyint(x[c] * s)));
    y[r] = float(acc / s * m.scale);
  }
  return y;
}

struct RefState {
  std::vector<std::vector<std::vector<float>>> k, v;  // [layer][pos][kv_dim]
};

std::vector<float> ref_step(const TinyModel& m, RefState& st, int token, size_t pos, bool sub_norms) {
  const ModelDims& d = m.d;
  std::vector<float> h(d.hidden);
  for (size_t i = 0; i < d.hidden; ++i) h[i] = f16_to_f32_scalar(m.embedding[token * d.hidden + i]);
  st.k.resize(d.layers), st.v.resize(d.layers);
  const size_t half = d.head_dim / 2;
  auto rope = [&](std::vector<float>& x, size_t heads) {
    for (size_t hd = 0; hd < heads; ++hd)
      for (size_t j = 0; j < half; ++j) {
        const double ang = double(pos) * std::pow(double(d.rope_theta), -2.0 * j / d.head_dim);
        float& a = x[hd * d.head_dim + j];
        float& b = x[hd * d.head_dim + j + half];
        const double na = a * std::cos(ang) - b * std::sin(ang), nb = b * std::cos(ang) + a * std::sin(ang);
        a = float(na), b = float(nb);
      }
  };
  for (size_t l = 0; l < d.layers; ++l) {
    const auto& L = m.layers[l];
    auto a = ref_rmsnorm(h, L.attn_norm, d.rms_eps);
    auto q = ref_bitlinear(L.q, a), k = ref_bitlinear(L.k, a), v = ref_bitlinear(L.v, a);
    rope(q, d.heads);
    rope(k, d.kv_heads);
    for (auto& x : k) x = f16_to_f32_scalar(f32_to_f16_scalar(x));  // the cache holds f16
    for (auto& x : v) x = f16_to_f32_scalar(f32_to_f16_scalar(x));
    st.k[l].push_back(k);
    st.v[l].push_back(v);
    std::vector<float> att(d.heads * d.head_dim, 0.f);
    for (size_t hd = 0; hd < d.heads; ++hd) {
      const size_t kvh = hd / (d.heads / d.kv_heads);
      std::vector<double> sc(pos + 1);
      double mx = -1e300;
      for (size_t t = 0; t <= pos; ++t) {
        double s = 0;
        for (size_t j = 0; j < d.head_dim; ++j) s += q[hd * d.head_dim + j] * st.k[l][t][kvh * d.head_dim + j];
        sc[t] = s / std::sqrt(double(d.head_dim));
        mx = std::max(mx, sc[t]);
      }
      double sum = 0;
      for (auto& s : sc) sum += (s = std::exp(s - mx));
      for (size_t t = 0; t <= pos; ++t)
        for (size_t j = 0; j < d.head_dim; ++j)
          att[hd * d.head_dim + j] += float(sc[t] / sum * st.v[l][t][kvh * d.head_dim + j]);
    }
    auto o = ref_bitlinear(L.o, sub_norms ? ref_rmsnorm(att, L.attn_sub_norm, d.rms_eps) : att);
    for (size_t i = 0; i < d.hidden; ++i) h[i] += o[i];
    auto b = ref_rmsnorm(h, L.ffn_norm, d.rms_eps);
    auto g = ref_bitlinear(L.gate, b), u = ref_bitlinear(L.up, b);
    std::vector<float> f(d.intermediate);
    for (size_t i = 0; i < d.intermediate; ++i) {
      const double gi = g[i];
      const double act = d.activation == FfnActivation::Relu2 ? (gi > 0 ? gi * gi : 0) : gi / (1 + std::exp(-gi));
      f[i] = float(act * u[i]);
    }
    auto dn = ref_bitlinear(L.down, sub_norms ? ref_rmsnorm(f, L.ffn_sub_norm, d.rms_eps) : f);
    for (size_t i = 0; i < d.hidden; ++i) h[i] += dn[i];
  }
  h = ref_rmsnorm(h, m.final_norm, d.rms_eps);
  std::vector<float> logits(d.vocab);
  for (size_t r = 0; r < d.vocab; ++r) {
    double s = 0;
    for (size_t c = 0; c < d.hidden; ++c) s += f16_to_f32_scalar(m.embedding[r * d.hidden + c]) * h[c];
    logits[r] = float(s);
  }
  return logits;
}

const std::vector<int32_t> kPrompt = {1, 5, 9, 33, 2, 68, 0, 17, 17, 44, 3, 12};

size_t argmax(const float* x, size_t n) { return std::max_element(x, x + n) - x; }

// Decodes kPrompt one token at a time; returns every step's logits.
std::vector<float> decode_all(const Transformer& tf, const KernelTable& k, size_t threads) {
  ThreadPool pool(threads);
  Runtime rt{&k, &pool};
  Session s(tf, 64);
  const size_t V = tf.dims().vocab;
  std::vector<float> out(kPrompt.size() * V);
  for (size_t i = 0; i < kPrompt.size(); ++i) s.forward(rt, &kPrompt[i], 1, out.data() + i * V, false);
  return out;
}

}  // namespace

TEST_CASE(matches_plain_reference_for_both_ffn_families) {
  for (FfnActivation act : {FfnActivation::Relu2, FfnActivation::Silu}) {
    const bool sub_norms = act == FfnActivation::Relu2;  // 2B4T has them, Llama-style BitNet does not
    TinyModel m = make_model(act);
    Transformer tf(m.weights(false, sub_norms), 64);
    for (const auto& name : runnable_isas()) {
      const auto got = decode_all(tf, kernels_for(name), 2);
      RefState st;
      const size_t V = m.d.vocab;
      for (size_t i = 0; i < kPrompt.size(); ++i) {
        const auto want = ref_step(m, st, kPrompt[i], i, sub_norms);
        float max_err = 0, max_abs = 0;
        for (size_t j = 0; j < V; ++j) {
          max_err = std::max(max_err, std::fabs(want[j] - got[i * V + j]));
          max_abs = std::max(max_abs, std::fabs(want[j]));
        }
        // int8 activation rounding can flip where x*s lands on .5; allow a small relative error.
        if (max_err > 2e-3f * max_abs + 1e-4f)
          check::fail(__FILE__, __LINE__, name + " step " + std::to_string(i) + ": max error " + std::to_string(max_err));
        CHECK_EQ(argmax(want.data(), V), argmax(got.data() + i * V, V));
      }
    }
  }
}

TEST_CASE(prefill_equals_token_by_token_decode_bit_for_bit) {
  TinyModel m = make_model(FfnActivation::Relu2);
  Transformer tf(m.weights(false, true), 64);
  for (const auto& name : runnable_isas()) {
    const KernelTable& k = kernels_for(name);
    const auto stepwise = decode_all(tf, k, 2);
    ThreadPool pool(2);
    Runtime rt{&k, &pool};
    Session s(tf, 64);
    const size_t V = m.d.vocab;
    std::vector<float> all(kPrompt.size() * V);
    s.forward(rt, kPrompt.data(), kPrompt.size(), all.data(), true);
    CHECK(std::memcmp(all.data(), stepwise.data(), all.size() * sizeof(float)) == 0);
    CHECK_EQ(s.position(), kPrompt.size());
  }
}

TEST_CASE(logits_identical_for_any_thread_count) {
  TinyModel m = make_model(FfnActivation::Relu2);
  for (bool int8_head : {false, true}) {
    Transformer tf(m.weights(int8_head, true), 64);
    for (const auto& name : runnable_isas()) {
      const auto one = decode_all(tf, kernels_for(name), 1);
      for (size_t threads : {2, 3, 8}) {
        const auto many = decode_all(tf, kernels_for(name), threads);
        CHECK(std::memcmp(one.data(), many.data(), one.size() * sizeof(float)) == 0);
      }
    }
  }
}

TEST_CASE(int8_head_keeps_greedy_choice_on_tiny_model) {
  TinyModel m = make_model(FfnActivation::Relu2);
  Transformer f16(m.weights(false, true), 64), i8(m.weights(true, true), 64);
  const auto a = decode_all(f16, scalar_kernels(), 1), b = decode_all(i8, scalar_kernels(), 1);
  const size_t V = m.d.vocab;
  size_t same = 0;
  for (size_t i = 0; i < kPrompt.size(); ++i) same += argmax(a.data() + i * V, V) == argmax(b.data() + i * V, V);
  CHECK(same >= kPrompt.size() - 1);
}

TEST_CASE(errors_leave_the_cache_unchanged) {
  TinyModel m = make_model(FfnActivation::Relu2);
  Transformer tf(m.weights(false, true), 16);
  ThreadPool pool(1);
  Runtime rt{&scalar_kernels(), &pool};
  Session s(tf, 8);
  std::vector<float> logits(m.d.vocab);
  s.forward(rt, kPrompt.data(), 5, logits.data(), false);
  bool threw = false;
  try {
    s.forward(rt, kPrompt.data(), 4, logits.data(), false);  // 5 + 4 > 8
  } catch (const std::out_of_range&) {
    threw = true;
  }
  CHECK(threw);
  threw = false;
  const int32_t bad = 70;
  try {
    s.forward(rt, &bad, 1, logits.data(), false);
  } catch (const std::invalid_argument&) {
    threw = true;
  }
  CHECK(threw);
  CHECK_EQ(s.position(), size_t{5});
  threw = false;
  try {
    Session too_big(tf, 17);
  } catch (const std::out_of_range&) {
    threw = true;
  }
  CHECK(threw);
}

TEST_CASE(a_truncated_session_continues_as_a_new_one) {
  // truncate(0) gives the cache's pages back to the OS; a shorter prefix keeps them.
  TinyModel m = make_model(FfnActivation::Relu2);
  Transformer tf(m.weights(false, true), 16);
  ThreadPool pool(2);
  Runtime rt{&scalar_kernels(), &pool};
  const size_t n = kPrompt.size();
  std::vector<float> fresh(m.d.vocab), again(m.d.vocab), resumed(m.d.vocab);
  Session s(tf, 16);
  s.forward(rt, kPrompt.data(), n, fresh.data(), false);
  s.truncate(0);
  s.forward(rt, kPrompt.data(), n, again.data(), false);
  s.truncate(2);
  s.forward(rt, kPrompt.data() + 2, n - 2, resumed.data(), false);
  CHECK(std::memcmp(fresh.data(), again.data(), fresh.size() * sizeof(float)) == 0);
  CHECK(std::memcmp(fresh.data(), resumed.data(), fresh.size() * sizeof(float)) == 0);
  CHECK_EQ(s.position(), n);
}

TEST_CASE(rejects_mismatched_weights) {
  TinyModel m = make_model(FfnActivation::Relu2);
  ModelWeights w = m.weights(false, true);
  w.layers[1].down.w.cols = 96;  // should be intermediate = 160
  bool threw = false;
  try {
    Transformer tf(w, 16);
  } catch (const std::invalid_argument& e) {
    threw = std::string(e.what()).find("layer 1 down_proj") != std::string::npos;
  }
  CHECK(threw);
}

TEST_MAIN
