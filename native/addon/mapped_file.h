// mapFile(path, copy = false, streamed = []): a Promise of the model file as
// an external ArrayBuffer, loaded on a libuv worker thread: mapped (or with
// copy, read into anonymous memory) in 2 MB pages where the kernel allows;
// streamed holds the [offset, length] ranges decode reads for every token,
// faulted in at once (native/model/file_memory.h says how and why).
// hugePageBytes(buffer, offset = 0, length = rest): how many of those bytes
// page tables map with 2 MB entries, or null where the kernel cannot tell.
#pragma once
#include <napi.h>

namespace bitnet_addon {

Napi::Value MapFile(const Napi::CallbackInfo& info);
Napi::Value HugePageBytes(const Napi::CallbackInfo& info);

}  // namespace bitnet_addon
