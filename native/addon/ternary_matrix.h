// TernaryMatrix: a packed ternary weight matrix whose plane bytes live in a JS
// Uint8Array (no copy), plus packTernary and allocAligned.
#pragma once
#include <napi.h>

#include "args.h"
#include "ternary_format.h"

namespace bitnet_addon {

class TernaryMatrix : public Napi::ObjectWrap<TernaryMatrix> {
 public:
  static Napi::Function Define(Napi::Env env);
  // The TernaryMatrix that v must be (TypeError otherwise).
  static TernaryMatrix& FromValue(Napi::Value v, const Arg& a);

  // new TernaryMatrix(planes: Uint8Array, rows, cols, scale)
  explicit TernaryMatrix(const Napi::CallbackInfo& info);

  // The packed weights; TypeError if the planes' buffer was detached since.
  bitnet::TernaryView view(const Arg& a) const;
  float scale() const { return scale_; }

 private:
  Napi::Value Rows(const Napi::CallbackInfo& info);
  Napi::Value Cols(const Napi::CallbackInfo& info);
  Napi::Value Scale(const Napi::CallbackInfo& info);
  Napi::Value Planes(const Napi::CallbackInfo& info);
  Napi::Value Unpack(const Napi::CallbackInfo& info);

  Napi::Reference<Napi::Uint8Array> planes_;  // keeps the weights' memory alive
  size_t rows_ = 0, cols_ = 0;
  float scale_ = 1.f;
};

// A zero-filled Uint8Array of `bytes` whose first byte is 64-byte aligned.
Napi::Uint8Array alloc_aligned(Napi::Env env, size_t bytes);

// packTernary(values: Int8Array, rows, cols): Uint8Array (aligned planes).
Napi::Value PackTernary(const Napi::CallbackInfo& info);
// allocAligned(bytes): Uint8Array
Napi::Value AllocAligned(const Napi::CallbackInfo& info);

}  // namespace bitnet_addon
