// Per-environment data of the addon: the constructors that argument checks
// use for instanceof (one set per Node environment, e.g. per worker thread).
#pragma once
#include <napi.h>

namespace bitnet_addon {

struct AddonData {
  Napi::FunctionReference ternary_matrix;
  Napi::FunctionReference runtime;
  Napi::FunctionReference native_model;
};

// This environment's data, created (empty) on first use.
AddonData& addon_data(Napi::Env env);

}  // namespace bitnet_addon
