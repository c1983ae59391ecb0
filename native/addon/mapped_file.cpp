#include "mapped_file.h"

#include <stdexcept>
#include <utility>
#include <string>
#include <vector>

#include "args.h"
#include "file_memory.h"

namespace bitnet_addon {
namespace {

// [offset, length] pairs; none when the argument is left out.
std::vector<bitnet::ByteRange> byte_ranges(Napi::Value v, const Arg& a) {
  if (v.IsUndefined()) return {};
  const Napi::Array pairs = array(v, a);
  std::vector<bitnet::ByteRange> out(pairs.Length());
  for (uint32_t i = 0; i < pairs.Length(); ++i) {
    const Arg pair_arg = a.element(i);
    const Napi::Array pair = array(pairs.Get(i), pair_arg);
    if (pair.Length() != 2) throw_range_error(v.Env(), pair_arg, "must be an [offset, length] pair");
    constexpr size_t kMaxSafeInteger = (size_t{1} << 53) - 1;
    out[i] = {integer(pair.Get(0u), pair_arg.element(0), 0, kMaxSafeInteger), integer(pair.Get(1u), pair_arg.element(1), 0, kMaxSafeInteger)};
  }
  return out;
}

// Loads the file on a libuv worker thread (faulting in and regrouping the
// streamed ranges reads them from disk when they are not cached) and resolves
// with the ArrayBuffer, which unloads the file when collected.
class MapFileWorker : public Napi::AsyncWorker {
 public:
  MapFileWorker(Napi::Env env, std::string path, bitnet::FileResidence residence, std::vector<bitnet::ByteRange> streamed)
      : Napi::AsyncWorker(env, "bitnet-gen:mapFile"),
        deferred_(Napi::Promise::Deferred::New(env)),
        path_(std::move(path)),
        residence_(residence),
        streamed_(std::move(streamed)) {}
  Napi::Promise promise() const { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      memory_ = bitnet::load_file(path_, residence_, streamed_);
    } catch (const std::exception& e) {
      SetError("mapFile: cannot map " + path_ + ": " + e.what());
    }
  }
  void OnOK() override {
    const bitnet::FileMemory memory = memory_;
    try {
      deferred_.Resolve(Napi::ArrayBuffer::New(Env(), memory.data, memory.size,
                                               [memory](Napi::Env, void*) { bitnet::unload_file(memory); }));
    } catch (const Napi::Error& e) {  // e.g. a runtime that refuses external buffers
      bitnet::unload_file(memory);
      deferred_.Reject(e.Value());
    }
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::string path_;
  bitnet::FileResidence residence_;
  std::vector<bitnet::ByteRange> streamed_;
  bitnet::FileMemory memory_;
};

}  // namespace

Napi::Value MapFile(const Napi::CallbackInfo& info) {
  const std::string path = string(info[0], {"mapFile", "path"});
  const bool copy = info.Length() > 1 && info[1].ToBoolean().Value();
  auto* worker = new MapFileWorker(info.Env(), path, copy ? bitnet::FileResidence::copied : bitnet::FileResidence::mapped,
                                   byte_ranges(info[2], {"mapFile", "streamed"}));
  const Napi::Promise promise = worker->promise();
  worker->Queue();
  return promise;
}

Napi::Value HugePageBytes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArrayBuffer()) throw_type_error(env, {"hugePageBytes", "buffer"}, "an ArrayBuffer");
  Napi::ArrayBuffer buffer = info[0].As<Napi::ArrayBuffer>();
  const size_t size = buffer.ByteLength();
  const size_t offset = info[1].IsUndefined() ? 0 : integer(info[1], {"hugePageBytes", "offset"}, 0, size);
  const size_t length = info[2].IsUndefined() ? size - offset : integer(info[2], {"hugePageBytes", "length"}, 0, size - offset);
  if (length == 0) return Napi::Number::New(env, 0);
  const long long bytes = bitnet::huge_page_bytes(static_cast<const char*>(buffer.Data()) + offset, length);
  return bytes < 0 ? env.Null() : Napi::Number::New(env, static_cast<double>(bytes));
}

}  // namespace bitnet_addon
