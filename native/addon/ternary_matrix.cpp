#include "ternary_matrix.h"

#include "addon_data.h"

#include <cstring>

namespace bitnet_addon {

namespace {

[[noreturn]] void throw_invalid_weight(Napi::Env env, const Arg& a, const bitnet::InvalidWeight& bad,
                                      size_t rows, size_t cols) {
  const bool padding = bad.row >= rows || bad.col >= cols;
  throw_range_error(env, a,
                    "holds an invalid weight at row " + std::to_string(bad.row) + ", column " +
                        std::to_string(bad.col) +
                        (padding ? " (a nonzero bit in the padding)" : " (both plane bits set)"));
}

}  // namespace

Napi::Function TernaryMatrix::Define(Napi::Env env) {
  Napi::Function ctor = DefineClass(env, "TernaryMatrix",
                                    {InstanceAccessor<&TernaryMatrix::Rows>("rows"),
                                     InstanceAccessor<&TernaryMatrix::Cols>("cols"),
                                     InstanceAccessor<&TernaryMatrix::Scale>("scale"),
                                     InstanceAccessor<&TernaryMatrix::Planes>("planes"),
                                     InstanceMethod<&TernaryMatrix::Unpack>("unpack")});
  addon_data(env).ternary_matrix = Napi::Persistent(ctor);
  return ctor;
}

TernaryMatrix& TernaryMatrix::FromValue(Napi::Value v, const Arg& a) {
  return unwrap_instance<TernaryMatrix>(v, addon_data(v.Env()).ternary_matrix, "TernaryMatrix", a);
}

TernaryMatrix::TernaryMatrix(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TernaryMatrix>(info) {
  const Napi::Env env = info.Env();
  const char* fn = "TernaryMatrix";
  rows_ = integer(info[1], {fn, "rows"}, 1, kMaxDim);
  cols_ = integer(info[2], {fn, "cols"}, 1, kMaxDim);
  scale_ = finite_number(info[3], {fn, "scale"});
  const Arg planes_arg{fn, "planes"};
  const size_t bytes = bitnet::packed_bytes(rows_, cols_);
  Napi::Uint8Array planes = typed_array_handle<uint8_t>(info[0], planes_arg);
  if (planes.ElementLength() != bytes)
    throw_range_error(env, planes_arg,
                      "must hold exactly " + std::to_string(bytes) + " bytes for a " +
                          std::to_string(rows_) + " x " + std::to_string(cols_) +
                          " matrix (it has " + std::to_string(planes.ElementLength()) + ")");
  require_aligned(env, planes.Data(), bitnet::kWeightAlign, planes_arg);
  const bitnet::InvalidWeight bad = bitnet::find_invalid_ternary({planes.Data(), rows_, cols_});
  if (bad.found) throw_invalid_weight(env, planes_arg, bad, rows_, cols_);
  planes_ = Napi::Persistent(planes);
}

bitnet::TernaryView TernaryMatrix::view(const Arg& a) const {
  const Napi::Uint8Array planes =
      typed_array_handle<uint8_t>(planes_.Value(), a.field("planes"), bitnet::packed_bytes(rows_, cols_));
  return {planes.Data(), rows_, cols_};
}

Napi::Value TernaryMatrix::Rows(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(rows_));
}

Napi::Value TernaryMatrix::Cols(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(cols_));
}

Napi::Value TernaryMatrix::Scale(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), scale_);
}

Napi::Value TernaryMatrix::Planes(const Napi::CallbackInfo&) { return planes_.Value(); }

Napi::Value TernaryMatrix::Unpack(const Napi::CallbackInfo& info) {
  const bitnet::TernaryView v = view({"TernaryMatrix.unpack", "this"});
  auto out = Napi::Int8Array::New(info.Env(), rows_ * cols_);
  bitnet::unpack_ternary(v, out.Data());
  return out;
}

Napi::Uint8Array alloc_aligned(Napi::Env env, size_t bytes) {
  // V8 never moves an ArrayBuffer's backing store, so an aligned offset into
  // an over-allocated buffer stays aligned for the buffer's lifetime.
  auto buffer = Napi::ArrayBuffer::New(env, bytes + bitnet::kWeightAlign - 1);
  const auto address = reinterpret_cast<uintptr_t>(buffer.Data());
  const size_t offset = (bitnet::kWeightAlign - address % bitnet::kWeightAlign) % bitnet::kWeightAlign;
  return Napi::Uint8Array::New(env, bytes, buffer, offset);
}

Napi::Value PackTernary(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const char* fn = "packTernary";
  const size_t rows = integer(info[1], {fn, "rows"}, 1, kMaxDim);
  const size_t cols = integer(info[2], {fn, "cols"}, 1, kMaxDim);
  const Arg values_arg{fn, "values"};
  const size_t n = mul_sat(rows, cols);
  const Span<int8_t> values = typed_array<int8_t>(info[0], values_arg, n);
  if (values.size != n)
    throw_range_error(env, values_arg,
                      "must hold exactly rows * cols = " + std::to_string(n) + " elements (it has " +
                          std::to_string(values.size) + ")");
  Napi::Uint8Array planes = alloc_aligned(env, bitnet::packed_bytes(rows, cols));
  if (!bitnet::pack_ternary(values.data, rows, cols, planes.Data())) {
    size_t i = 0;
    while (values.data[i] >= -1 && values.data[i] <= 1) ++i;
    throw_range_error(env, values_arg,
                      "holds " + std::to_string(values.data[i]) + " at row " + std::to_string(i / cols) +
                          ", column " + std::to_string(i % cols) + "; weights must be -1, 0 or 1");
  }
  return planes;
}

Napi::Value AllocAligned(const Napi::CallbackInfo& info) {
  return alloc_aligned(info.Env(), integer(info[0], {"allocAligned", "bytes"}, 0, kMaxDim * 2));
}

}  // namespace bitnet_addon
