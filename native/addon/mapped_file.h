// mapFile(path): maps a model file into memory as an external ArrayBuffer, so
// tensors are used in place (no read, no copy). The mapping is private and
// writable: a stray write from JS changes only this process's copy of the
// page, never the file, and never faults.
#pragma once
#include <napi.h>

namespace bitnet_addon {

Napi::Value MapFile(const Napi::CallbackInfo& info);

}  // namespace bitnet_addon
