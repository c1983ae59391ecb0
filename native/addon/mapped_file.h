// mapFile(path, copy = false): the model file as an external ArrayBuffer.
// By default it is mapped, so tensors are used in place (no read, no copy); the
// mapping is private and writable: a stray write from JS changes only this
// process's copy of the page, never the file, and never faults. With copy, the
// file is read into anonymous (transparent-huge-page) memory instead
// (llama.cpp's --no-mmap): slower to load, and decode is no faster (measured
// in docs/kernels.md), but the file may then change or go away.
#pragma once
#include <napi.h>

namespace bitnet_addon {

Napi::Value MapFile(const Napi::CallbackInfo& info);

}  // namespace bitnet_addon
