// Argument checking shared by every N-API entry point. Each check throws a
// JS TypeError (wrong type, detached buffer) or RangeError (length, alignment,
// value) whose message names the function and the argument, e.g.
// "gemv: targets[1].out must be a Float32Array of at least 640 elements".
#pragma once
#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace bitnet_addon {

// The path of one argument, for error messages.
struct Arg {
  const char* fn;
  std::string name;

  Arg field(const char* f) const { return {fn, name + "." + f}; }
  Arg element(size_t i) const { return {fn, name + "[" + std::to_string(i) + "]"}; }
  std::string label() const { return std::string(fn) + ": " + name; }
};

[[noreturn]] void throw_type_error(Napi::Env env, const Arg& a, const std::string& must_be);
[[noreturn]] void throw_range_error(Napi::Env env, const Arg& a, const std::string& problem);

template <class T>
struct TypedArrayKind;
template <>
struct TypedArrayKind<float> {
  static constexpr napi_typedarray_type type = napi_float32_array;
  static constexpr const char* name = "a Float32Array";
};
template <>
struct TypedArrayKind<int8_t> {
  static constexpr napi_typedarray_type type = napi_int8_array;
  static constexpr const char* name = "an Int8Array";
};
template <>
struct TypedArrayKind<uint8_t> {
  static constexpr napi_typedarray_type type = napi_uint8_array;
  static constexpr const char* name = "a Uint8Array";
};
template <>
struct TypedArrayKind<int32_t> {
  static constexpr napi_typedarray_type type = napi_int32_array;
  static constexpr const char* name = "an Int32Array";
};
template <>
struct TypedArrayKind<uint16_t> {
  static constexpr napi_typedarray_type type = napi_uint16_array;
  static constexpr const char* name = "a Uint16Array";
};

template <class T>
struct Span {
  T* data;
  size_t size;
};

// The typed array v after checking its element type, that its buffer is
// attached and that it has at least min_len elements; type_name comes with
// its article ("an Int8Array").
Napi::TypedArray checked_typed_array(Napi::Value v, const Arg& a, napi_typedarray_type type,
                                     const char* type_name, size_t min_len);

// v as a T typed array of at least min_len elements, for callers that keep it.
template <class T>
Napi::TypedArrayOf<T> typed_array_handle(Napi::Value v, const Arg& a, size_t min_len = 0) {
  using Kind = TypedArrayKind<T>;
  return checked_typed_array(v, a, Kind::type, Kind::name, min_len).template As<Napi::TypedArrayOf<T>>();
}

// The elements of v, which must be a T typed array of at least min_len elements.
template <class T>
Span<T> typed_array(Napi::Value v, const Arg& a, size_t min_len = 0) {
  auto arr = typed_array_handle<T>(v, a, min_len);
  return {arr.Data(), arr.ElementLength()};
}

// The C++ object wrapped by v, which must be an instance of ctor (TypeError
// "fn: name must be a <class_name>" otherwise).
template <class Wrap>
Wrap& unwrap_instance(Napi::Value v, const Napi::FunctionReference& ctor, const char* class_name,
                      const Arg& a) {
  // napi_unwrap also refuses objects that only inherit the prototype
  // (Object.create(TernaryMatrix.prototype)) and so hold no C++ object.
  void* wrapped = nullptr;
  if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(ctor.Value()) ||
      napi_unwrap(v.Env(), v, &wrapped) != napi_ok || !wrapped)
    throw_type_error(v.Env(), a, std::string("a ") + class_name);
  return *static_cast<Wrap*>(wrapped);
}

// An integer in [min, max]; TypeError when not a number, RangeError otherwise.
size_t integer(Napi::Value v, const Arg& a, size_t min, size_t max);
// A finite number.
float finite_number(Napi::Value v, const Arg& a);
Napi::Object object(Napi::Value v, const Arg& a);
Napi::Array array(Napi::Value v, const Arg& a);
std::string string(Napi::Value v, const Arg& a);

// RangeError unless p starts on an `alignment`-byte boundary.
void require_aligned(Napi::Env env, const void* p, size_t alignment, const Arg& a);
// RangeError naming the first element of x that is NaN or infinite.
void require_finite(Napi::Env env, const float* x, size_t n, const Arg& a);

// a * b, saturating at SIZE_MAX so that a huge requested size fails the
// following length check instead of wrapping around.
size_t mul_sat(size_t a, size_t b);

// Dimensions (rows, heads, lengths) are capped here; products use mul_sat.
constexpr size_t kMaxDim = size_t{1} << 31;

}  // namespace bitnet_addon
