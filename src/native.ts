/**
 * Loads the compiled addon (prebuilds/<platform>-<arch>/ from `npm run
 * build:prebuilds`, or build/Release/ from a local build) through
 * node-gyp-build, and describes its raw interface. Application code uses the
 * typed wrappers in kernels.ts instead.
 */
import * as fs from 'fs';
import * as path from 'path';

/** Options of a native Runtime; see {@link RuntimeOptions} in kernels.ts. */
export interface NativeRuntimeOptions {
  threads?: number;
  isa?: string;
}

/** One ternary matrix applied to the shared input of gemv/gemm. */
export interface NativeTernaryTarget {
  matrix: NativeTernaryMatrix;
  outScale: number;
  out: Float32Array;
}

export interface NativeTernaryMatrix {
  readonly rows: number;
  readonly cols: number;
  readonly scale: number;
  readonly planes: Uint8Array;
  unpack(): Int8Array;
}

export interface NativeRuntime {
  readonly isa: string;
  readonly threads: number;
  quantizeActivations(x: Float32Array, q: Int8Array): number;
  gemv(q: Int8Array, targets: readonly NativeTernaryTarget[]): void;
  gemm(q: Int8Array, m: number, actScales: Float32Array, targets: readonly NativeTernaryTarget[]): void;
  gemmAsync(q: Int8Array, m: number, actScales: Float32Array, targets: readonly NativeTernaryTarget[]): Promise<void>;
  attention(q: Float32Array, kCache: Uint16Array, vCache: Uint16Array, tLen: number, nHeads: number,
            nKvHeads: number, headDim: number, out: Float32Array): void;
  attentionAsync(q: Float32Array, kCache: Uint16Array, vCache: Uint16Array, tLen: number, nHeads: number,
                 nKvHeads: number, headDim: number, out: Float32Array): Promise<void>;
  rmsnorm(x: Float32Array, g: Float32Array, eps: number, out: Float32Array): void;
  rope(v: Float32Array, nHeads: number, headDim: number, cosHalf: Float32Array, sinHalf: Float32Array): void;
  relu2Gate(gate: Float32Array, up: Float32Array, out: Float32Array): void;
  siluGate(gate: Float32Array, up: Float32Array, out: Float32Array): void;
  addInPlace(y: Float32Array, x: Float32Array): void;
  f16ToF32(x: Uint16Array, out: Float32Array): void;
  f32ToF16(x: Float32Array, out: Uint16Array): void;
  matvecF16(w: Uint16Array, rows: number, cols: number, x: Float32Array, out: Float32Array): void;
  matvecI8(w: Int8Array, rows: number, colsPadded: number, q: Int8Array, rowScale: Float32Array,
           xInvScale: number, out: Float32Array): void;
}

export interface NativeBinding {
  runnableIsas(): string[];
  activeIsa(): string;
  cpuFeatures(): string;
  defaultThreadCount(): number;
  packTernary(values: Int8Array, rows: number, cols: number): Uint8Array;
  allocAligned(bytes: number): Uint8Array;
  layout: { rowTile: number; chunkCols: number; weightAlign: number };
  TernaryMatrix: new (planes: Uint8Array, rows: number, cols: number, scale: number) => NativeTernaryMatrix;
  Runtime: new (options?: NativeRuntimeOptions) => NativeRuntime;
}

/** The package root: one level above src/ (ts-jest) and dist/ (compiled). */
const packageRoot = path.resolve(__dirname, '..');

function shippedPrebuilds(): string[] {
  try {
    return fs.readdirSync(path.join(packageRoot, 'prebuilds'));
  } catch {
    return [];
  }
}

function load(): NativeBinding {
  const nodeGypBuild = require('node-gyp-build') as (dir: string) => unknown;
  try {
    return nodeGypBuild(packageRoot) as NativeBinding;
  } catch (err) {
    const shipped = shippedPrebuilds();
    throw new Error(
      `bitnet-gen: no native addon for ${process.platform}-${process.arch} ` +
        `(Node ${process.version}, N-API ${process.versions.napi ?? '?'}; the addon needs N-API 8 or later). ` +
        `Prebuilt binaries in this package: ${shipped.length ? shipped.join(', ') : 'none'}. ` +
        `To build it from source you need a C++17 compiler, make and Python 3: in a project that ` +
        `depends on bitnet-gen run \`npm rebuild bitnet-gen\`; in a checkout of bitnet-gen run ` +
        `\`npm run build\` (cmake-js) or \`npx node-gyp rebuild\`. The package is at ${packageRoot}. ` +
        `Otherwise use a supported platform. Loader said: ${(err as Error).message.trim()}`,
    );
  }
}

/** The addon, loaded once on first import. */
export const native: NativeBinding = load();
