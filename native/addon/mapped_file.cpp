#include "mapped_file.h"

#include <stdexcept>
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

}  // namespace

Napi::Value MapFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string path = string(info[0], {"mapFile", "path"});
  const bool copy = info.Length() > 1 && info[1].ToBoolean().Value();
  const std::vector<bitnet::ByteRange> streamed = byte_ranges(info[2], {"mapFile", "streamed"});
  bitnet::FileMemory memory;
  try {
    memory = bitnet::load_file(path, copy ? bitnet::FileResidence::copied : bitnet::FileResidence::mapped, streamed);
  } catch (const std::runtime_error& e) {
    throw Napi::Error::New(env, "mapFile: cannot map " + path + ": " + e.what());
  }
  return Napi::ArrayBuffer::New(env, memory.data, memory.size,
                                [memory](Napi::Env, void*) { bitnet::unload_file(memory); });
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
