// Model files in memory, as external ArrayBuffers whose tensors are used in place.
//
// mapFile(path, copy = false): by default the file is mapped (no read, no
// copy), private and writable, at a 2 MiB-aligned address: a stray write from
// JS changes only this process's copy of a page, never the file. With copy,
// the file is read into anonymous transparent-huge-page memory instead
// (llama.cpp's --no-mmap).
//
// promoteMapping(buffer, ranges): Promise<number>. A page-cache mapping uses
// 4 KiB pages, so decode, which streams the weights once per token, pays a TLB
// miss (a two-level page walk in a VM) every 4 KiB; huge pages make it ~1.4x
// faster here (docs/kernels.md). On a worker thread this copies the given
// [offset, length] byte ranges of a mapFile() mapping, 2 MiB-aligned, into
// huge-page memory and mremap()s the copies over the same addresses, slice by
// slice: every pointer into the buffer stays valid and keeps reading the same
// bytes, so forward passes may run meanwhile, and the extra memory at any
// moment is one slice. Resolves with the bytes moved (0 where the OS has no
// mremap); rejects, leaving the rest mapped, when memory runs out.
#pragma once
#include <napi.h>

namespace bitnet_addon {

Napi::Value MapFile(const Napi::CallbackInfo& info);
Napi::Value PromoteMapping(const Napi::CallbackInfo& info);

}  // namespace bitnet_addon
