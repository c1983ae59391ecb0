#include "args.h"

#include <cmath>
#include <limits>

namespace bitnet_addon {

void throw_type_error(Napi::Env env, const Arg& a, const std::string& must_be) {
  throw Napi::TypeError::New(env, a.label() + " must be " + must_be);
}

void throw_range_error(Napi::Env env, const Arg& a, const std::string& problem) {
  throw Napi::RangeError::New(env, a.label() + " " + problem);
}

Napi::TypedArray checked_typed_array(Napi::Value v, const Arg& a, napi_typedarray_type type,
                                     const char* type_name, size_t min_len) {
  const std::string must_be =
      std::string(type_name) +
      (min_len ? " of at least " + std::to_string(min_len) + " elements" : std::string());
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type)
    throw_type_error(v.Env(), a, must_be);
  auto arr = v.As<Napi::TypedArray>();
  if (arr.ArrayBuffer().IsDetached())
    throw Napi::TypeError::New(v.Env(), a.label() + " is backed by a detached ArrayBuffer");
  if (arr.ElementLength() < min_len)
    throw_range_error(v.Env(), a,
                      "must be " + must_be + " (it has " + std::to_string(arr.ElementLength()) + ")");
  return arr;
}

size_t integer(Napi::Value v, const Arg& a, size_t min, size_t max) {
  const std::string must_be =
      "an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]";
  if (!v.IsNumber()) throw_type_error(v.Env(), a, must_be);
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= static_cast<double>(min) && d <= static_cast<double>(max)) || d != std::floor(d))
    throw_range_error(v.Env(), a, "must be " + must_be + " (got " + v.ToString().Utf8Value() + ")");
  return static_cast<size_t>(d);
}

float finite_number(Napi::Value v, const Arg& a) {
  if (!v.IsNumber()) throw_type_error(v.Env(), a, "a finite number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || std::fabs(d) > std::numeric_limits<float>::max())
    throw_range_error(v.Env(), a, "must be a finite number (got " + v.ToString().Utf8Value() + ")");
  return static_cast<float>(d);
}

Napi::Object object(Napi::Value v, const Arg& a) {
  if (!v.IsObject()) throw_type_error(v.Env(), a, "an object");
  return v.As<Napi::Object>();
}

Napi::Array array(Napi::Value v, const Arg& a) {
  if (!v.IsArray()) throw_type_error(v.Env(), a, "an array");
  return v.As<Napi::Array>();
}

std::string string(Napi::Value v, const Arg& a) {
  if (!v.IsString()) throw_type_error(v.Env(), a, "a string");
  return v.As<Napi::String>().Utf8Value();
}

void require_aligned(Napi::Env env, const void* p, size_t alignment, const Arg& a) {
  const size_t misalignment = reinterpret_cast<uintptr_t>(p) % alignment;
  if (misalignment)
    throw_range_error(env, a,
                      "must start on a " + std::to_string(alignment) + "-byte boundary (it starts " +
                          std::to_string(misalignment) +
                          " bytes past one); allocate it with allocAligned()");
}

void require_finite(Napi::Env env, const float* x, size_t n, const Arg& a) {
  for (size_t i = 0; i < n; ++i)
    if (!std::isfinite(x[i]))
      throw_range_error(env, a.element(i), "must be finite (got " + std::to_string(x[i]) + ")");
}

size_t mul_sat(size_t a, size_t b) {
  size_t r;
  return __builtin_mul_overflow(a, b, &r) ? std::numeric_limits<size_t>::max() : r;
}

}  // namespace bitnet_addon
