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

/** The time the host took from one thread of a runtime's pool (`Runtime.measureOffCpu`). */
export interface OffCpuThread {
  /** Share of the measured time the thread was off its CPU, 0..1. */
  fraction: number;
  /** Gaps of more than 2 us between two of its clock reads. */
  gaps: number;
  /** Median gap, in milliseconds (0 without gaps). */
  medianGapMs: number;
  /** Median time from one gap's start to the next's, in milliseconds (0 with fewer than two gaps). */
  medianPeriodMs: number;
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
  measureReadBandwidth(mib: number): number;
  measureOffCpu(ms: number): OffCpuThread[];
  topK(values: Float32Array, k: number, out: Int32Array): void;
}

/** Shape and numerics of a model, as the native forward pass needs them. */
export interface NativeModelDims {
  hidden: number;
  intermediate: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  vocab: number;
  ropeTheta: number;
  rmsEps: number;
  activation: 'relu2' | 'silu';
}

/** One decoder layer's weights; sub-norms are absent in Llama-style BitNet models. */
export interface NativeLayerSpec {
  attnNorm: Float32Array;
  q: NativeTernaryMatrix;
  k: NativeTernaryMatrix;
  v: NativeTernaryMatrix;
  o: NativeTernaryMatrix;
  attnSubNorm?: Float32Array;
  ffnNorm: Float32Array;
  gate: NativeTernaryMatrix;
  up: NativeTernaryMatrix;
  down: NativeTernaryMatrix;
  ffnSubNorm?: Float32Array;
}

/** The LM head: f16 rows [vocab][hidden], or int8 rows [vocab][cols] (cols = hidden padded to 64) with row scales. */
/** The LM head: f16 rows, or int8 rows, optionally with the 4-bit copy decode ranks rows with (q4*: nibbles, row scales, padded cols). */
export type NativeHeadSpec =
  | { f16: Uint16Array }
  | { i8: Int8Array; rowScale: Float32Array; cols: number; q4?: Uint8Array; q4RowScale?: Float32Array; q4Cols?: number };

/** Everything `new NativeModel()` takes. Arrays are used in place, never copied. */
export interface NativeModelSpec {
  dims: NativeModelDims;
  maxContext: number;
  /** f16 bits, [vocab][hidden]. */
  embedding: Uint16Array;
  finalNorm: Float32Array;
  layers: NativeLayerSpec[];
  head: NativeHeadSpec;
}

export interface NativeModel {
  readonly maxContext: number;
}

export interface NativeSession {
  /** Tokens already in the KV cache. */
  readonly position: number;
  readonly context: number;
  /** The KV cache's size at full context; its pages are committed as positions fill. */
  readonly kvCacheBytes: number;
  /**
   * Runs tokens through the model; logits of the last token (or of all, [n][vocab]) land in `logits`.
   * Resolves with the milliseconds the pass took on its worker thread (without the queueing and
   * main-thread hops around it).
   */
  forward(runtime: NativeRuntime, tokens: Int32Array, logits: Float32Array, allLogits?: boolean): Promise<number>;
  /** Forgets cached tokens from position `keep` on. */
  truncate(keep: number): void;
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
  NativeModel: new (spec: NativeModelSpec) => NativeModel;
  NativeSession: new (model: NativeModel, context: number) => NativeSession;
  /**
   * Maps a file (private, copy-on-write) into an external ArrayBuffer, in 2 MB pages where the
   * kernel allows (native/model/file_memory.h); the `streamed` [offset, length] ranges (default
   * none), which decode reads for every token, are faulted in at once. With copy, reads the file
   * into anonymous memory. Runs on a libuv worker thread: both read from disk what is not cached.
   */
  mapFile(path: string, copy?: boolean, streamed?: [number, number][]): Promise<ArrayBuffer>;
  /**
   * Bytes of `buffer` from `offset` (default 0) for `length` (default: to its end) that page tables
   * map with 2 MB entries; null where the kernel cannot tell (Linux < 6.7).
   */
  hugePageBytes(buffer: ArrayBuffer, offset?: number, length?: number): number | null;
}

/** The package root: the nearest folder above this module holding package.json (from src/, dist/ or any build folder). */
function findPackageRoot(): string {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) return path.resolve(__dirname, '..');
    dir = parent;
  }
  return dir;
}
const packageRoot = findPackageRoot();

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
