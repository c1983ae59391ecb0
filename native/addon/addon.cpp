// Module entry: runtime information, TernaryMatrix, Runtime, NativeModel and
// NativeSession, mapFile, hugePageBytes, packTernary, allocAligned.
// Everything here is glue; the math lives in native/kernels and native/model.
#include <napi.h>

#include <stdexcept>

#include "addon_data.h"
#include "isa.h"
#include "mapped_file.h"
#include "model.h"
#include "runtime.h"
#include "ternary_matrix.h"
#include "thread_pool.h"

namespace bitnet_addon {
namespace {

Napi::Value RunnableIsas(const Napi::CallbackInfo& info) {
  const std::vector<std::string> names = bitnet::runnable_isas();
  Napi::Array out = Napi::Array::New(info.Env(), names.size());
  for (uint32_t i = 0; i < names.size(); ++i) out.Set(i, names[i]);
  return out;
}

// The ISA a Runtime with isa "auto" uses; throws when BITNET_ISA names an
// unknown ISA or one this CPU or build lacks.
Napi::Value ActiveIsa(const Napi::CallbackInfo& info) {
  try {
    return Napi::String::New(info.Env(), bitnet::active_kernels().isa_name);
  } catch (const std::runtime_error& e) {
    throw Napi::Error::New(info.Env(), std::string("activeIsa: ") + e.what());
  }
}

Napi::Value CpuFeatures(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), bitnet::cpu_features());
}

Napi::Value DefaultThreadCount(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(bitnet::default_thread_count()));
}

}  // namespace

AddonData& addon_data(Napi::Env env) {
  if (!env.GetInstanceData<AddonData>()) env.SetInstanceData(new AddonData());
  return *env.GetInstanceData<AddonData>();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("runnableIsas", Napi::Function::New<RunnableIsas>(env, "runnableIsas"));
  exports.Set("activeIsa", Napi::Function::New<ActiveIsa>(env, "activeIsa"));
  exports.Set("cpuFeatures", Napi::Function::New<CpuFeatures>(env, "cpuFeatures"));
  exports.Set("defaultThreadCount", Napi::Function::New<DefaultThreadCount>(env, "defaultThreadCount"));
  exports.Set("packTernary", Napi::Function::New<PackTernary>(env, "packTernary"));
  exports.Set("allocAligned", Napi::Function::New<AllocAligned>(env, "allocAligned"));
  // The weight layout's constants, so that TypeScript pads and aligns exactly as the kernels expect.
  Napi::Object layout = Napi::Object::New(env);
  layout.Set("rowTile", static_cast<double>(bitnet::kRowTile));
  layout.Set("chunkCols", static_cast<double>(bitnet::kChunkCols));
  layout.Set("weightAlign", static_cast<double>(bitnet::kWeightAlign));
  exports.Set("layout", layout);
  exports.Set("TernaryMatrix", TernaryMatrix::Define(env));
  exports.Set("Runtime", Runtime::Define(env));
  exports.Set("NativeModel", NativeModel::Define(env));
  exports.Set("NativeSession", NativeSession::Define(env));
  exports.Set("mapFile", Napi::Function::New<MapFile>(env, "mapFile"));
  exports.Set("hugePageBytes", Napi::Function::New<HugePageBytes>(env, "hugePageBytes"));
  return exports;
}

}  // namespace bitnet_addon

static Napi::Object InitBitnetGen(Napi::Env env, Napi::Object exports) {
  return bitnet_addon::Init(env, exports);
}

NODE_API_MODULE(bitnet_gen, InitBitnetGen)
