// Runtime: one kernel table (ISA) and one thread pool, with the kernels as
// methods. Every method checks its arguments (args.h) and then calls
// bitnet::ops or a single KernelTable entry on the caller's typed arrays.
#pragma once
#include <napi.h>

#include <functional>
#include <memory>
#include <vector>

#include "args.h"
#include "ops.h"

namespace bitnet_addon {

class Runtime : public Napi::ObjectWrap<Runtime> {
 public:
  static Napi::Function Define(Napi::Env env);
  // The Runtime that v must be (TypeError otherwise).
  static Runtime& FromValue(Napi::Value v, const Arg& a);

  // new Runtime({ threads?, isa? })
  explicit Runtime(const Napi::CallbackInfo& info);

  // The kernels and pool, for other objects that run on this runtime. Keep
  // the Runtime's JS object alive while they are in use.
  bitnet::Runtime ops() const { return {kernels_, pool_.get()}; }

 private:
  // Checked arguments turned into work: `work` runs the kernel with a scratch
  // buffer; `inputs` are the JS values whose memory it touches (kept alive
  // while an async call runs).
  struct Job {
    std::function<void(bitnet::AlignedBuffer&)> work;
    std::vector<Napi::Value> inputs;
  };
  // Runs the job now and returns undefined.
  Napi::Value run_sync(const Napi::CallbackInfo& info, const Job& job);
  // Runs the job on a libuv worker thread; returns a Promise<void>.
  Napi::Value run_async(const Napi::CallbackInfo& info, Job job);

  Job gemm_job(const Napi::CallbackInfo& info, const char* fn);
  Job attention_job(const Napi::CallbackInfo& info, const char* fn);

  Napi::Value Isa(const Napi::CallbackInfo& info);
  Napi::Value Threads(const Napi::CallbackInfo& info);
  Napi::Value QuantizeActivations(const Napi::CallbackInfo& info);
  Napi::Value Gemv(const Napi::CallbackInfo& info);
  Napi::Value Gemm(const Napi::CallbackInfo& info);
  Napi::Value GemmAsync(const Napi::CallbackInfo& info);
  Napi::Value Attention(const Napi::CallbackInfo& info);
  Napi::Value AttentionAsync(const Napi::CallbackInfo& info);
  Napi::Value Rmsnorm(const Napi::CallbackInfo& info);
  Napi::Value Rope(const Napi::CallbackInfo& info);
  Napi::Value Relu2Gate(const Napi::CallbackInfo& info);
  Napi::Value SiluGate(const Napi::CallbackInfo& info);
  Napi::Value AddInPlace(const Napi::CallbackInfo& info);
  Napi::Value F16ToF32(const Napi::CallbackInfo& info);
  Napi::Value F32ToF16(const Napi::CallbackInfo& info);
  Napi::Value MatvecF16(const Napi::CallbackInfo& info);
  Napi::Value MatvecI8(const Napi::CallbackInfo& info);
  Napi::Value MeasureReadBandwidth(const Napi::CallbackInfo& info);
  Napi::Value MeasureOffCpu(const Napi::CallbackInfo& info);
  Napi::Value TopK(const Napi::CallbackInfo& info);

  const bitnet::KernelTable* kernels_ = nullptr;
  std::unique_ptr<bitnet::ThreadPool> pool_;
  bitnet::ThreadPool calling_thread_{1};  // no workers: runs jobs on the caller (topK)
  bitnet::AlignedBuffer scratch_;  // synchronous calls only; async jobs own theirs
};

}  // namespace bitnet_addon
