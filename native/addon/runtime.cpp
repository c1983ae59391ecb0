#include "runtime.h"

#include <stdexcept>

#include "addon_data.h"
#include "args.h"
#include "isa.h"
#include "ternary_matrix.h"

namespace bitnet_addon {

namespace {

// Runs one Job on a libuv worker thread and settles a Promise with it.
class JobWorker : public Napi::AsyncWorker {
 public:
  JobWorker(Napi::Env env, std::function<void(bitnet::AlignedBuffer&)> work,
            const std::vector<Napi::Value>& inputs)
      : Napi::AsyncWorker(env, "bitnet-gen"),
        deferred_(Napi::Promise::Deferred::New(env)),
        work_(std::move(work)) {
    for (const Napi::Value& v : inputs) inputs_.push_back(Napi::Persistent(v));
  }
  Napi::Promise promise() const { return deferred_.Promise(); }

 protected:
  void Execute() override { work_(scratch_); }
  void OnOK() override { deferred_.Resolve(Env().Undefined()); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::function<void(bitnet::AlignedBuffer&)> work_;
  std::vector<Napi::Reference<Napi::Value>> inputs_;
  bitnet::AlignedBuffer scratch_;  // a running async job never shares scratch
};

struct Targets {
  std::vector<bitnet::TernaryTarget> list;
  size_t padded_cols = 0;
};

// targets: [{ matrix, outScale, out }], out holding m rows of matrix.rows floats.
// All matrices must share padded_cols, since they read one input.
Targets parse_targets(Napi::Value v, const char* fn, size_t m, std::vector<Napi::Value>& inputs) {
  const Arg arg{fn, "targets"};
  const Napi::Array arr = array(v, arg);
  if (arr.Length() == 0) throw_range_error(v.Env(), arg, "must hold at least one target");
  Targets t;
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    const Arg ti = arg.element(i);
    const Napi::Object obj = object(arr.Get(i), ti);
    const Napi::Value matrix_value = obj.Get("matrix");
    const bitnet::TernaryView w =
        TernaryMatrix::FromValue(matrix_value, ti.field("matrix")).view(ti.field("matrix"));
    const float out_scale = finite_number(obj.Get("outScale"), ti.field("outScale"));
    const Napi::Value out_value = obj.Get("out");
    float* y = typed_array<float>(out_value, ti.field("out"), mul_sat(m, w.rows)).data;
    if (i == 0) t.padded_cols = w.padded_cols();
    if (w.padded_cols() != t.padded_cols)
      throw_range_error(v.Env(), ti.field("matrix"),
                        "has " + std::to_string(w.padded_cols()) + " padded columns but targets[0].matrix has " +
                            std::to_string(t.padded_cols) + "; targets of one call share one input");
    t.list.push_back({w, out_scale, y, w.rows});
    inputs.push_back(matrix_value);
    inputs.push_back(out_value);
  }
  return t;
}

// Elementwise kernels: out[i] = f(a[i], b[i]) for i < a.length.
template <class Kernel>
Napi::Value binary_elementwise(const Napi::CallbackInfo& info, const char* fn, const char* a_name,
                               const char* b_name, Kernel kernel) {
  const Span<float> a = typed_array<float>(info[0], {fn, a_name});
  const Span<float> b = typed_array<float>(info[1], {fn, b_name}, a.size);
  const Span<float> out = typed_array<float>(info[2], {fn, "out"}, a.size);
  kernel(a.data, b.data, a.size, out.data);
  return info.Env().Undefined();
}

}  // namespace

Napi::Function Runtime::Define(Napi::Env env) {
  Napi::Function ctor = DefineClass(
      env, "Runtime",
      {InstanceAccessor<&Runtime::Isa>("isa"), InstanceAccessor<&Runtime::Threads>("threads"),
       InstanceMethod<&Runtime::QuantizeActivations>("quantizeActivations"),
       InstanceMethod<&Runtime::Gemv>("gemv"), InstanceMethod<&Runtime::Gemm>("gemm"),
       InstanceMethod<&Runtime::GemmAsync>("gemmAsync"),
       InstanceMethod<&Runtime::Attention>("attention"),
       InstanceMethod<&Runtime::AttentionAsync>("attentionAsync"),
       InstanceMethod<&Runtime::Rmsnorm>("rmsnorm"), InstanceMethod<&Runtime::Rope>("rope"),
       InstanceMethod<&Runtime::Relu2Gate>("relu2Gate"),
       InstanceMethod<&Runtime::SiluGate>("siluGate"),
       InstanceMethod<&Runtime::AddInPlace>("addInPlace"),
       InstanceMethod<&Runtime::F16ToF32>("f16ToF32"),
       InstanceMethod<&Runtime::F32ToF16>("f32ToF16"),
       InstanceMethod<&Runtime::MatvecF16>("matvecF16"),
       InstanceMethod<&Runtime::MatvecI8>("matvecI8"),
       InstanceMethod<&Runtime::MeasureReadBandwidth>("measureReadBandwidth"),
       InstanceMethod<&Runtime::MeasureOffCpu>("measureOffCpu"),
       InstanceMethod<&Runtime::TopK>("topK")});
  addon_data(env).runtime = Napi::Persistent(ctor);
  return ctor;
}

Runtime& Runtime::FromValue(Napi::Value v, const Arg& a) {
  return unwrap_instance<Runtime>(v, addon_data(v.Env()).runtime, "Runtime", a);
}

Runtime::Runtime(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Runtime>(info) {
  const Napi::Env env = info.Env();
  const char* fn = "Runtime";
  size_t threads = bitnet::default_thread_count();
  std::string isa = "auto";
  if (!info[0].IsUndefined()) {
    const Napi::Object options = object(info[0], {fn, "options"});
    if (!options.Get("threads").IsUndefined())
      threads = integer(options.Get("threads"), {fn, "options.threads"}, 1, 1024);
    if (!options.Get("isa").IsUndefined()) isa = string(options.Get("isa"), {fn, "options.isa"});
  }
  try {
    kernels_ = isa == "auto" ? &bitnet::active_kernels() : &bitnet::kernels_for(isa);
  } catch (const std::runtime_error& e) {
    throw Napi::Error::New(env, std::string(fn) + ": " + e.what());
  }
  pool_ = std::make_unique<bitnet::ThreadPool>(threads);
}

Napi::Value Runtime::run_sync(const Napi::CallbackInfo& info, const Job& job) {
  job.work(scratch_);
  return info.Env().Undefined();
}

Napi::Value Runtime::run_async(const Napi::CallbackInfo& info, Job job) {
  job.inputs.push_back(info.This());  // the pool and kernels belong to this Runtime
  auto* worker = new JobWorker(info.Env(), std::move(job.work), job.inputs);
  const Napi::Promise promise = worker->promise();
  worker->Queue();
  return promise;
}

Napi::Value Runtime::Isa(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), kernels_->isa_name);
}

Napi::Value Runtime::Threads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(pool_->size()));
}

// measureReadBandwidth(mib: number): bytes per second
Napi::Value Runtime::MeasureReadBandwidth(const Napi::CallbackInfo& info) {
  const size_t mib = integer(info[0], {"measureReadBandwidth", "mib"}, 1, size_t{1} << 16);
  return Napi::Number::New(info.Env(), bitnet::measure_read_bandwidth(ops(), mib << 20));
}

// measureOffCpu(ms: number): per thread of the pool, { fraction, gaps,
// medianGapMs, medianPeriodMs } (bitnet::measure_off_cpu)
Napi::Value Runtime::MeasureOffCpu(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const size_t ms = integer(info[0], {"measureOffCpu", "ms"}, 1, 10000);
  const std::vector<bitnet::OffCpu> threads = bitnet::measure_off_cpu(ops(), static_cast<double>(ms) / 1e3);
  Napi::Array out = Napi::Array::New(env, threads.size());
  for (size_t i = 0; i < threads.size(); ++i) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("fraction", threads[i].fraction);
    o.Set("gaps", static_cast<double>(threads[i].gaps));
    o.Set("medianGapMs", threads[i].median_gap * 1e3);
    o.Set("medianPeriodMs", threads[i].median_period * 1e3);
    out.Set(static_cast<uint32_t>(i), o);
  }
  return out;
}

// topK(values: Float32Array, k: number, out: Int32Array): the indices of the k
// largest values in out, largest first, equal values in index order
// (bitnet::top_k). It runs on the calling thread, not on the pool: a sampler
// calls it on the event loop between forward passes, and the pool may be busy
// with another session's pass (57 us for 128256 values here).
Napi::Value Runtime::TopK(const Napi::CallbackInfo& info) {
  const char* fn = "topK";
  const Span<float> values = typed_array<float>(info[0], {fn, "values"});
  const size_t k = integer(info[1], {fn, "k"}, 1, values.size);
  int32_t* out = typed_array<int32_t>(info[2], {fn, "out"}, k).data;
  bitnet::top_k({kernels_, &calling_thread_}, values.data, values.size, k, reinterpret_cast<uint32_t*>(out),
                scratch_);
  return info.Env().Undefined();
}

// quantizeActivations(x: Float32Array, q: Int8Array): number (the scale)
Napi::Value Runtime::QuantizeActivations(const Napi::CallbackInfo& info) {
  const char* fn = "quantizeActivations";
  const Span<float> x = typed_array<float>(info[0], {fn, "x"});
  require_finite(info.Env(), x.data, x.size, {fn, "x"});
  const Span<int8_t> q = typed_array<int8_t>(info[1], {fn, "q"}, x.size);
  return Napi::Number::New(info.Env(),
                           bitnet::quantize_activations(*kernels_, x.data, x.size, q.data, q.size));
}

// gemv(q: Int8Array, targets)
Napi::Value Runtime::Gemv(const Napi::CallbackInfo& info) {
  const char* fn = "gemv";
  std::vector<Napi::Value> inputs;
  const Targets t = parse_targets(info[1], fn, 1, inputs);
  const int8_t* q = typed_array<int8_t>(info[0], {fn, "q"}, t.padded_cols).data;
  bitnet::ternary_gemv(ops(), q, t.list.data(), t.list.size(), scratch_);
  return info.Env().Undefined();
}

// gemm(q: Int8Array, m, actScales: Float32Array, targets): q holds m rows of
// padded_cols, target outs m rows of matrix.rows.
Runtime::Job Runtime::gemm_job(const Napi::CallbackInfo& info, const char* fn) {
  Job job;
  const size_t m = integer(info[1], {fn, "m"}, 1, kMaxDim);
  const Targets t = parse_targets(info[3], fn, m, job.inputs);
  const int8_t* q = typed_array<int8_t>(info[0], {fn, "q"}, mul_sat(m, t.padded_cols)).data;
  const float* act_scales = typed_array<float>(info[2], {fn, "actScales"}, m).data;
  job.inputs.push_back(info[0]);
  job.inputs.push_back(info[2]);
  const bitnet::Runtime rt = ops();
  const size_t q_stride = t.padded_cols;
  job.work = [rt, q, q_stride, m, act_scales, targets = t.list](bitnet::AlignedBuffer& scratch) {
    bitnet::ternary_gemm(rt, q, q_stride, m, act_scales, targets.data(), targets.size(), scratch);
  };
  return job;
}

Napi::Value Runtime::Gemm(const Napi::CallbackInfo& info) { return run_sync(info, gemm_job(info, "gemm")); }

Napi::Value Runtime::GemmAsync(const Napi::CallbackInfo& info) {
  return run_async(info, gemm_job(info, "gemmAsync"));
}

// attention(q, kCache: Uint16Array, vCache: Uint16Array, tLen, nHeads, nKvHeads, headDim, out)
Runtime::Job Runtime::attention_job(const Napi::CallbackInfo& info, const char* fn) {
  const Napi::Env env = info.Env();
  const size_t t_len = integer(info[3], {fn, "tLen"}, 1, kMaxDim);
  const size_t n_heads = integer(info[4], {fn, "nHeads"}, 1, kMaxDim);
  const size_t n_kv_heads = integer(info[5], {fn, "nKvHeads"}, 1, n_heads);
  if (n_heads % n_kv_heads)
    throw_range_error(env, {fn, "nKvHeads"},
                      "must divide nHeads = " + std::to_string(n_heads) + " (got " +
                          std::to_string(n_kv_heads) + ")");
  const size_t head_dim = integer(info[6], {fn, "headDim"}, 1, kMaxDim);
  const size_t q_len = mul_sat(n_heads, head_dim);
  const size_t cache_len = mul_sat(t_len, mul_sat(n_kv_heads, head_dim));
  const float* q = typed_array<float>(info[0], {fn, "q"}, q_len).data;
  const uint16_t* k = typed_array<uint16_t>(info[1], {fn, "kCache"}, cache_len).data;
  const uint16_t* v = typed_array<uint16_t>(info[2], {fn, "vCache"}, cache_len).data;
  float* out = typed_array<float>(info[7], {fn, "out"}, q_len).data;
  const bitnet::Runtime rt = ops();
  Job job;
  job.inputs = {info[0], info[1], info[2], info[7]};
  job.work = [=](bitnet::AlignedBuffer& scratch) {
    bitnet::attention(rt, q, k, v, {n_kv_heads * head_dim, head_dim}, t_len, n_heads, n_kv_heads, head_dim, out,
                      scratch);
  };
  return job;
}

Napi::Value Runtime::Attention(const Napi::CallbackInfo& info) {
  return run_sync(info, attention_job(info, "attention"));
}

Napi::Value Runtime::AttentionAsync(const Napi::CallbackInfo& info) {
  return run_async(info, attention_job(info, "attentionAsync"));
}

// rmsnorm(x, g, eps, out), all Float32Array of x.length
Napi::Value Runtime::Rmsnorm(const Napi::CallbackInfo& info) {
  const char* fn = "rmsnorm";
  const Span<float> x = typed_array<float>(info[0], {fn, "x"});
  const float* g = typed_array<float>(info[1], {fn, "g"}, x.size).data;
  const float eps = finite_number(info[2], {fn, "eps"});
  float* out = typed_array<float>(info[3], {fn, "out"}, x.size).data;
  kernels_->rmsnorm(x.data, g, x.size, eps, out);
  return info.Env().Undefined();
}

// rope(v, nHeads, headDim, cosHalf, sinHalf), in place
Napi::Value Runtime::Rope(const Napi::CallbackInfo& info) {
  const char* fn = "rope";
  const size_t n_heads = integer(info[1], {fn, "nHeads"}, 1, kMaxDim);
  const size_t head_dim = integer(info[2], {fn, "headDim"}, 2, kMaxDim);
  if (head_dim % 2)
    throw_range_error(info.Env(), {fn, "headDim"},
                      "must be even (got " + std::to_string(head_dim) + ")");
  float* v = typed_array<float>(info[0], {fn, "v"}, mul_sat(n_heads, head_dim)).data;
  const float* cos_half = typed_array<float>(info[3], {fn, "cosHalf"}, head_dim / 2).data;
  const float* sin_half = typed_array<float>(info[4], {fn, "sinHalf"}, head_dim / 2).data;
  kernels_->rope(v, n_heads, head_dim, cos_half, sin_half);
  return info.Env().Undefined();
}

Napi::Value Runtime::Relu2Gate(const Napi::CallbackInfo& info) {
  return binary_elementwise(info, "relu2Gate", "gate", "up", kernels_->relu2_gate);
}

Napi::Value Runtime::SiluGate(const Napi::CallbackInfo& info) {
  return binary_elementwise(info, "siluGate", "gate", "up", kernels_->silu_gate);
}

// addInPlace(y, x): y[i] += x[i] for i < y.length
Napi::Value Runtime::AddInPlace(const Napi::CallbackInfo& info) {
  const char* fn = "addInPlace";
  const Span<float> y = typed_array<float>(info[0], {fn, "y"});
  const float* x = typed_array<float>(info[1], {fn, "x"}, y.size).data;
  kernels_->add_inplace(y.data, x, y.size);
  return info.Env().Undefined();
}

// f16ToF32(x: Uint16Array, out: Float32Array)
Napi::Value Runtime::F16ToF32(const Napi::CallbackInfo& info) {
  const char* fn = "f16ToF32";
  const Span<uint16_t> x = typed_array<uint16_t>(info[0], {fn, "x"});
  float* out = typed_array<float>(info[1], {fn, "out"}, x.size).data;
  kernels_->f16_to_f32(x.data, x.size, out);
  return info.Env().Undefined();
}

// f32ToF16(x: Float32Array, out: Uint16Array)
Napi::Value Runtime::F32ToF16(const Napi::CallbackInfo& info) {
  const char* fn = "f32ToF16";
  const Span<float> x = typed_array<float>(info[0], {fn, "x"});
  uint16_t* out = typed_array<uint16_t>(info[1], {fn, "out"}, x.size).data;
  kernels_->f32_to_f16(x.data, x.size, out);
  return info.Env().Undefined();
}

// matvecF16(w: Uint16Array, rows, cols, x: Float32Array, out: Float32Array)
Napi::Value Runtime::MatvecF16(const Napi::CallbackInfo& info) {
  const char* fn = "matvecF16";
  const size_t rows = integer(info[1], {fn, "rows"}, 1, kMaxDim);
  const size_t cols = integer(info[2], {fn, "cols"}, 1, kMaxDim);
  const uint16_t* w = typed_array<uint16_t>(info[0], {fn, "w"}, mul_sat(rows, cols)).data;
  const float* x = typed_array<float>(info[3], {fn, "x"}, cols).data;
  float* out = typed_array<float>(info[4], {fn, "out"}, rows).data;
  bitnet::matvec_f16(ops(), w, rows, cols, x, out);
  return info.Env().Undefined();
}

// matvecI8(w: Int8Array, rows, colsPadded, q: Int8Array, rowScale: Float32Array, xInvScale, out)
Napi::Value Runtime::MatvecI8(const Napi::CallbackInfo& info) {
  const char* fn = "matvecI8";
  const size_t rows = integer(info[1], {fn, "rows"}, 1, kMaxDim);
  const size_t cols_padded = integer(info[2], {fn, "colsPadded"}, 64, kMaxDim);
  if (cols_padded % 64)
    throw_range_error(info.Env(), {fn, "colsPadded"},
                      "must be a multiple of 64 (got " + std::to_string(cols_padded) + ")");
  const int8_t* w = typed_array<int8_t>(info[0], {fn, "w"}, mul_sat(rows, cols_padded)).data;
  const int8_t* q = typed_array<int8_t>(info[3], {fn, "q"}, cols_padded).data;
  const float* row_scale = typed_array<float>(info[4], {fn, "rowScale"}, rows).data;
  const float x_inv_scale = finite_number(info[5], {fn, "xInvScale"});
  float* out = typed_array<float>(info[6], {fn, "out"}, rows).data;
  bitnet::matvec_i8(ops(), w, rows, cols_padded, q, row_scale, x_inv_scale, out);
  return info.Env().Undefined();
}

}  // namespace bitnet_addon
