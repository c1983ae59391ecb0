# node-gyp build of the addon, used by `npm install` when no prebuild matches.
# Sources come from native/sources.json (scripts/gyp-sources.js), the list
# CMakeLists.txt reads too. Each SIMD source group is a static library of its
# own so that only its files get that ISA's compiler flags; the flags match
# CMakeLists.txt.
{
  "target_defaults": {
    "cflags_cc": ["-std=c++17", "-fexceptions", "-fPIC", "-O3"],
    "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++14", "-std=gnu++17", "-std=gnu++20"],
    "include_dirs": ["native/kernels", "native/model"],
    "conditions": [
      ["target_arch=='x64'", {"defines": ["BITNET_HAVE_X86=1"]}],
      ["target_arch=='arm64'", {"defines": ["BITNET_HAVE_NEON=1"]}]
    ]
  },
  "targets": [
    {
      "target_name": "bitnet_gen",
      "sources": [
        "<!@(node scripts/gyp-sources.js kernels)",
        "<!@(node scripts/gyp-sources.js addon)"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": [
        "NAPI_VERSION=8",
        "NODE_ADDON_API_DISABLE_DEPRECATED",
        "NODE_ADDON_API_CPP_EXCEPTIONS",
        "NODE_ADDON_API_CPP_EXCEPTIONS_ALL"
      ],
      "libraries": ["-lpthread"],
      "conditions": [
        ["target_arch=='x64'", {"dependencies": ["bitnet_kernels_avx2", "bitnet_kernels_avx512"]}],
        ["target_arch=='arm64'", {"dependencies": ["bitnet_kernels_neon"]}]
      ]
    }
  ],
  "conditions": [
    ["target_arch=='x64'", {
      "targets": [
        {
          "target_name": "bitnet_kernels_avx2",
          "type": "static_library",
          "sources": ["<!@(node scripts/gyp-sources.js kernels_avx2)"],
          "cflags_cc": ["-falign-loops=64", "-mavx2", "-mfma", "-mf16c", "-mbmi2"]
        },
        {
          "target_name": "bitnet_kernels_avx512",
          "type": "static_library",
          "sources": ["<!@(node scripts/gyp-sources.js kernels_avx512)"],
          "cflags_cc": ["-falign-loops=64", "-falign-functions=4096", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mavx512vnni",
                        "-mavx512vbmi", "-mavx2", "-mfma", "-mf16c", "-mbmi2"]
        }
      ]
    }],
    ["target_arch=='arm64'", {
      "targets": [
        {
          "target_name": "bitnet_kernels_neon",
          "type": "static_library",
          "sources": ["<!@(node scripts/gyp-sources.js kernels_neon)"],
          "cflags_cc": ["-march=armv8.2-a+dotprod"]
        }
      ]
    }]
  ]
}
