#include "model.h"

#include <chrono>
#include <stdexcept>
#include <string>

#include "addon_data.h"
#include "args.h"
#include "runtime.h"
#include "ternary_matrix.h"

namespace bitnet_addon {

namespace {

// Reads spec fields into bitnet structs, remembering every JS value whose
// memory the weights point into.
class SpecReader {
 public:
  SpecReader(Napi::Env env, std::vector<Napi::Reference<Napi::Value>>& keep) : env_(env), keep_(keep) {}

  template <class T>
  const T* array_field(const Napi::Object& o, const Arg& parent, const char* key, size_t len) {
    const Napi::Value v = o.Get(key);
    keep_.push_back(Napi::Persistent(v));
    return typed_array<T>(v, parent.field(key), len).data;
  }
  template <class T>
  const T* optional_array(const Napi::Object& o, const Arg& parent, const char* key, size_t len) {
    const Napi::Value v = o.Get(key);
    return v.IsUndefined() || v.IsNull() ? nullptr : array_field<T>(o, parent, key, len);
  }
  bitnet::TernaryWeight ternary(const Napi::Object& o, const Arg& parent, const char* key) {
    const Napi::Value v = o.Get(key);
    const Arg a = parent.field(key);
    TernaryMatrix& m = TernaryMatrix::FromValue(v, a);
    keep_.push_back(Napi::Persistent(v));
    return {m.view(a), m.scale()};
  }
  size_t dim(const Napi::Object& o, const Arg& parent, const char* key) {
    return integer(o.Get(key), parent.field(key), 1, kMaxDim);
  }

 private:
  Napi::Env env_;
  std::vector<Napi::Reference<Napi::Value>>& keep_;
};

}  // namespace

Napi::Function NativeModel::Define(Napi::Env env) {
  Napi::Function ctor = DefineClass(env, "NativeModel", {InstanceAccessor<&NativeModel::MaxContext>("maxContext")});
  addon_data(env).native_model = Napi::Persistent(ctor);
  return ctor;
}

NativeModel& NativeModel::FromValue(Napi::Value v, const Arg& a) {
  return unwrap_instance<NativeModel>(v, addon_data(v.Env()).native_model, "NativeModel", a);
}

NativeModel::NativeModel(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeModel>(info) {
  Napi::Env env = info.Env();
  const Arg spec_arg{"NativeModel", "spec"};
  const Napi::Object spec = object(info[0], spec_arg);
  SpecReader r(env, keep_alive_);

  bitnet::ModelWeights w;
  const Arg dims_arg = spec_arg.field("dims");
  const Napi::Object dims = object(spec.Get("dims"), dims_arg);
  bitnet::ModelDims& d = w.dims;
  d.hidden = r.dim(dims, dims_arg, "hidden");
  d.intermediate = r.dim(dims, dims_arg, "intermediate");
  d.layers = r.dim(dims, dims_arg, "layers");
  d.heads = r.dim(dims, dims_arg, "heads");
  d.kv_heads = r.dim(dims, dims_arg, "kvHeads");
  d.head_dim = r.dim(dims, dims_arg, "headDim");
  d.vocab = r.dim(dims, dims_arg, "vocab");
  d.rope_theta = finite_number(dims.Get("ropeTheta"), dims_arg.field("ropeTheta"));
  d.rms_eps = finite_number(dims.Get("rmsEps"), dims_arg.field("rmsEps"));
  const std::string act = string(dims.Get("activation"), dims_arg.field("activation"));
  if (act != "relu2" && act != "silu") throw_range_error(env, dims_arg.field("activation"), "must be \"relu2\" or \"silu\"");
  d.activation = act == "relu2" ? bitnet::FfnActivation::Relu2 : bitnet::FfnActivation::Silu;
  const size_t max_context = integer(spec.Get("maxContext"), spec_arg.field("maxContext"), 1, 1u << 24);

  w.embedding = r.array_field<uint16_t>(spec, spec_arg, "embedding", mul_sat(d.vocab, d.hidden));
  w.final_norm = r.array_field<float>(spec, spec_arg, "finalNorm", d.hidden);
  const size_t q_dim = mul_sat(d.heads, d.head_dim);
  const Arg layers_arg = spec_arg.field("layers");
  const Napi::Array layers = array(spec.Get("layers"), layers_arg);
  for (uint32_t i = 0; i < layers.Length(); ++i) {
    const Arg la = layers_arg.element(i);
    const Napi::Object l = object(layers.Get(i), la);
    bitnet::LayerWeights lw;
    lw.attn_norm = r.array_field<float>(l, la, "attnNorm", d.hidden);
    lw.ffn_norm = r.array_field<float>(l, la, "ffnNorm", d.hidden);
    lw.attn_sub_norm = r.optional_array<float>(l, la, "attnSubNorm", q_dim);
    lw.ffn_sub_norm = r.optional_array<float>(l, la, "ffnSubNorm", d.intermediate);
    lw.q = r.ternary(l, la, "q");
    lw.k = r.ternary(l, la, "k");
    lw.v = r.ternary(l, la, "v");
    lw.o = r.ternary(l, la, "o");
    lw.gate = r.ternary(l, la, "gate");
    lw.up = r.ternary(l, la, "up");
    lw.down = r.ternary(l, la, "down");
    w.layers.push_back(lw);
  }
  const Arg head_arg = spec_arg.field("head");
  const Napi::Object head = object(spec.Get("head"), head_arg);
  if (!head.Get("f16").IsUndefined()) {
    w.head.f16 = r.array_field<uint16_t>(head, head_arg, "f16", mul_sat(d.vocab, d.hidden));
  } else {
    w.head.i8_cols = integer(head.Get("cols"), head_arg.field("cols"), d.hidden, kMaxDim);
    w.head.i8 = r.array_field<int8_t>(head, head_arg, "i8", mul_sat(d.vocab, w.head.i8_cols));
    w.head.i8_row_scale = r.array_field<float>(head, head_arg, "rowScale", d.vocab);
    if (!head.Get("q4").IsUndefined()) {
      w.head.q4_cols = integer(head.Get("q4Cols"), head_arg.field("q4Cols"), d.hidden, kMaxDim);
      w.head.q4 = r.array_field<uint8_t>(head, head_arg, "q4", mul_sat(d.vocab, w.head.q4_cols / 2));
      w.head.q4_row_scale = r.array_field<float>(head, head_arg, "q4RowScale", d.vocab);
    }
  }
  try {
    transformer_ = std::make_unique<bitnet::Transformer>(std::move(w), max_context);
  } catch (const std::invalid_argument& e) {
    throw_range_error(env, spec_arg, e.what());
  }
}

Napi::Value NativeModel::MaxContext(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(transformer_->max_context()));
}

// One forward() call on a libuv worker thread.
class ForwardWorker : public Napi::AsyncWorker {
 public:
  ForwardWorker(Napi::Env env, NativeSession& session, Napi::Object session_obj, Napi::Value runtime_obj,
                bitnet::Runtime rt, std::vector<int32_t> tokens, Napi::Float32Array logits, bool all)
      : Napi::AsyncWorker(env, "bitnet-gen:forward"),
        deferred_(Napi::Promise::Deferred::New(env)),
        session_(session),
        session_ref_(Napi::Persistent(session_obj)),
        runtime_ref_(Napi::Persistent(runtime_obj)),
        logits_ref_(Napi::Persistent(logits)),
        rt_(rt),
        tokens_(std::move(tokens)),
        logits_(logits.Data()),
        all_(all) {}
  Napi::Promise promise() const { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      const auto started = std::chrono::steady_clock::now();
      session_.session_->forward(rt_, tokens_.data(), tokens_.size(), logits_, all_);
      native_ms_ = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
    } catch (const std::exception& e) {
      SetError(std::string("forward: ") + e.what());
    }
  }
  void OnOK() override {
    session_.busy_ = false;
    deferred_.Resolve(Napi::Number::New(Env(), native_ms_));
  }
  void OnError(const Napi::Error& e) override {
    session_.busy_ = false;
    deferred_.Reject(e.Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  NativeSession& session_;
  Napi::ObjectReference session_ref_;      // keeps the session (and its model) alive
  Napi::Reference<Napi::Value> runtime_ref_;
  Napi::Reference<Napi::Float32Array> logits_ref_;
  bitnet::Runtime rt_;
  std::vector<int32_t> tokens_;
  float* logits_;
  bool all_;
  double native_ms_ = 0;  // wall time of the forward pass on the worker thread
};

Napi::Function NativeSession::Define(Napi::Env env) {
  return DefineClass(env, "NativeSession",
                     {InstanceMethod<&NativeSession::Forward>("forward"),
                      InstanceMethod<&NativeSession::Truncate>("truncate"),
                      InstanceAccessor<&NativeSession::Position>("position"),
                      InstanceAccessor<&NativeSession::Context>("context"),
                      InstanceAccessor<&NativeSession::KvCacheBytes>("kvCacheBytes")});
}

NativeSession::NativeSession(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeSession>(info) {
  NativeModel& model = NativeModel::FromValue(info[0], {"NativeSession", "model"});
  const bitnet::Transformer& tf = model.transformer();
  const size_t context = integer(info[1], {"NativeSession", "context"}, 1, tf.max_context());
  model_ = Napi::Persistent(info[0].As<Napi::Object>());
  session_ = std::make_unique<bitnet::Session>(tf, context);
}

void NativeSession::require_idle(Napi::Env env, const char* fn) const {
  if (busy_) throw Napi::Error::New(env, std::string(fn) + ": the session is busy with another forward(); await it first");
}

Napi::Value NativeSession::Forward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_idle(env, "forward");
  Runtime& runtime = Runtime::FromValue(info[0], {"forward", "runtime"});
  const Span<int32_t> tokens = typed_array<int32_t>(info[1], {"forward", "tokens"});
  if (tokens.size == 0) throw_range_error(env, {"forward", "tokens"}, "must hold at least one token");
  const bool all = info.Length() > 3 && info[3].ToBoolean().Value();
  const size_t vocab = session_->model().dims().vocab;
  const Napi::Float32Array logits =
      typed_array_handle<float>(info[2], {"forward", "logits"}, mul_sat(all ? tokens.size : 1, vocab));
  // Check here what forward() would reject, so errors are synchronous and clear.
  if (tokens.size > session_->context() - session_->position())
    throw_range_error(env, {"forward", "tokens"},
                      "holds " + std::to_string(tokens.size) + " tokens but only " +
                          std::to_string(session_->context() - session_->position()) +
                          " positions are left in the context of " + std::to_string(session_->context()));
  for (size_t i = 0; i < tokens.size; ++i)
    if (tokens.data[i] < 0 || static_cast<size_t>(tokens.data[i]) >= vocab)
      throw_range_error(env, Arg{"forward", "tokens"}.element(i),
                        "is " + std::to_string(tokens.data[i]) + ", outside the vocabulary of " +
                            std::to_string(vocab));
  busy_ = true;
  auto* worker = new ForwardWorker(env, *this, Value(), info[0], runtime.ops(),
                                   std::vector<int32_t>(tokens.data, tokens.data + tokens.size), logits, all);
  worker->Queue();
  return worker->promise();
}

Napi::Value NativeSession::Truncate(const Napi::CallbackInfo& info) {
  require_idle(info.Env(), "truncate");
  session_->truncate(integer(info[0], {"truncate", "keep"}, 0, session_->position()));
  return info.Env().Undefined();
}

Napi::Value NativeSession::Position(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(session_->position()));
}

Napi::Value NativeSession::Context(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(session_->context()));
}

Napi::Value NativeSession::KvCacheBytes(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(session_->kv_cache_bytes()));
}

}  // namespace bitnet_addon
