// NativeModel and NativeSession: the JS face of bitnet::Transformer and
// bitnet::Session. Weights stay in the caller's typed arrays (usually views of
// one mapped model file); the objects keep references so the memory outlives
// every session. forward() runs on a libuv worker and returns a Promise, so
// generation never blocks the event loop.
#pragma once
#include <napi.h>

#include <atomic>
#include <memory>
#include <vector>

#include "args.h"
#include "transformer.h"

namespace bitnet_addon {

class NativeModel : public Napi::ObjectWrap<NativeModel> {
 public:
  static Napi::Function Define(Napi::Env env);
  static NativeModel& FromValue(Napi::Value v, const Arg& a);

  // new NativeModel(spec): see src/model/native-model.ts for the spec's shape.
  explicit NativeModel(const Napi::CallbackInfo& info);
  const bitnet::Transformer& transformer() const { return *transformer_; }

 private:
  Napi::Value MaxContext(const Napi::CallbackInfo& info);

  std::unique_ptr<bitnet::Transformer> transformer_;
  std::vector<Napi::Reference<Napi::Value>> keep_alive_;
};

class NativeSession : public Napi::ObjectWrap<NativeSession> {
 public:
  static Napi::Function Define(Napi::Env env);

  // new NativeSession(model: NativeModel, context: number)
  explicit NativeSession(const Napi::CallbackInfo& info);

 private:
  // forward(runtime, tokens: Int32Array, logits: Float32Array, allLogits: boolean): Promise<void>
  Napi::Value Forward(const Napi::CallbackInfo& info);
  Napi::Value Truncate(const Napi::CallbackInfo& info);
  Napi::Value Position(const Napi::CallbackInfo& info);
  Napi::Value Context(const Napi::CallbackInfo& info);
  Napi::Value KvCacheBytes(const Napi::CallbackInfo& info);
  void require_idle(Napi::Env env, const char* fn) const;

  friend class ForwardWorker;
  Napi::ObjectReference model_;
  std::unique_ptr<bitnet::Session> session_;
  std::atomic<bool> busy_{false};
};

}  // namespace bitnet_addon
