// mapFile(path, copy = false): the model file as an external ArrayBuffer.
// By default it is mapped, so tensors are used in place (no read, no copy); the
// mapping is private and writable: a stray write from JS changes only this
// process's copy of the page, never the file, and never faults. With copy, the
// file is read into anonymous (transparent-huge-page) memory instead
// (llama.cpp's --no-mmap): slower to load, but decode is faster from 2 MB
// pages than from the page cache's 4 KB ones (docs/kernels.md, "Mapped file
// vs weights in memory"), and the file may then change or go away.
#pragma once
#include <napi.h>

namespace bitnet_addon {

Napi::Value MapFile(const Napi::CallbackInfo& info);

}  // namespace bitnet_addon
