/**
 * Typed access to the native kernels: runtime information, packed ternary
 * matrices and a Runtime (one ISA, one thread pool) whose methods run the
 * kernels on caller-owned typed arrays. Nothing here copies weights: matrices
 * wrap their plane bytes, outputs are written into arrays the caller passes
 * (or fresh ones when `out` is omitted).
 *
 * Every function checks its arguments natively and throws TypeError (wrong
 * type, detached buffer) or RangeError (length, alignment, value) naming the
 * argument, e.g. "gemv: targets[1].out must be a Float32Array of at least 640 elements".
 */
import { native, NativeRuntime } from './native';
import type { OffCpuThread } from './native';

export type { OffCpuThread };

/** Weight layout constants (native/kernels/ternary_format.h). */
export const layout: Readonly<{
  /** Rows per tile; packed rows are padded to a multiple of this (64). */
  rowTile: number;
  /** Columns per chunk; packed columns and quantized inputs are padded to a multiple of this (128). */
  chunkCols: number;
  /** Byte alignment that packed planes must have (64). */
  weightAlign: number;
}> = Object.freeze({ ...native.layout });

/** ISAs this binary contains and this CPU runs, best first (e.g. ["avx512", "avx2", "scalar"]). */
export function runnableIsas(): string[] {
  return native.runnableIsas();
}

/**
 * The ISA a Runtime with `isa: "auto"` uses: BITNET_ISA when set (and not
 * "auto"), else the best runnable one. Throws an Error when BITNET_ISA names
 * an unknown ISA or one this CPU or build lacks.
 */
export function activeIsa(): string {
  return native.activeIsa();
}

/** CPU features the ISA dispatch looked at, e.g. ["avx2", "fma", "avx512f", ...]. */
export function cpuFeatures(): string[] {
  return native.cpuFeatures().split(' ').filter(Boolean);
}

/** Threads a Runtime uses by default: BITNET_THREADS if set, else the CPUs this process may use. */
export function defaultThreadCount(): number {
  return native.defaultThreadCount();
}

/** `n` rounded up to a multiple of {@link layout}.chunkCols: the length of a quantized input of n values. */
export function paddedLength(n: number): number {
  return Math.ceil(n / layout.chunkCols) * layout.chunkCols;
}

/**
 * Packs a row-major `rows x cols` matrix of -1/0/+1 into the bit-plane layout.
 * @returns the planes, 64-byte aligned, ready for `new TernaryMatrix(planes, ...)` or a model file.
 * @throws RangeError naming the row and column of the first value outside {-1, 0, 1}.
 */
export function packTernary(values: Int8Array, rows: number, cols: number): Uint8Array {
  return native.packTernary(values, rows, cols);
}

/**
 * A zero-filled Uint8Array of `bytes` whose data starts on a 64-byte boundary,
 * e.g. to read packed planes from a file into memory a TernaryMatrix can wrap.
 */
export function allocAligned(bytes: number): Uint8Array {
  return native.allocAligned(bytes);
}

/**
 * A packed ternary weight matrix W[rows][cols] (w in {-1, 0, +1}) with a
 * per-tensor scale. `new TernaryMatrix(planes, rows, cols, scale)` wraps
 * already-packed plane bytes without copying them: `planes` must hold exactly
 * the packed size, start on a 64-byte boundary and contain valid weights (the
 * error names the row and column of the first invalid one). The matrix keeps
 * `planes` alive; do not detach or transfer its buffer while the matrix is used.
 *
 * Members: `rows`, `cols`, `scale`, `planes` (the same memory) and `unpack()`
 * (a fresh row-major Int8Array of the logical values).
 */
export class TernaryMatrix extends native.TernaryMatrix {
  /** Packs `values` (row-major, -1/0/+1) into a new matrix. @param scale defaults to 1. */
  static fromValues(values: Int8Array, rows: number, cols: number, scale = 1): TernaryMatrix {
    return new TernaryMatrix(packTernary(values, rows, cols), rows, cols, scale);
  }
}

/** Options of a {@link Runtime}. */
export interface RuntimeOptions {
  /** Worker threads including the caller, 1..1024. Default: {@link defaultThreadCount}(). */
  threads?: number;
  /** "avx512", "avx2", "neon", "scalar" or "auto". Default "auto": {@link activeIsa}(). */
  isa?: string;
}

/** One matrix applied to the shared input of {@link Runtime.gemv} / {@link Runtime.gemm}. */
export interface TernaryTarget {
  matrix: TernaryMatrix;
  /** gemv: out = (W q) * outScale, usually matrix.scale / activation scale. gemm: the weight scale. */
  outScale: number;
  /** gemv: at least matrix.rows floats; gemm: m rows of matrix.rows floats. */
  out: Float32Array;
}

/** Output of {@link Runtime.quantizeActivations}. */
export interface QuantizedActivations {
  /** round(x * scale) clamped to int8, zero-padded to the array's length. */
  q: Int8Array;
  /** 127 / max(|x|, 1e-5). */
  scale: number;
}

/** Shape of one attention call. */
export interface AttentionShape {
  /** Cached positions to attend over (>= 1). */
  tLen: number;
  /** Query heads. */
  nHeads: number;
  /** KV heads; must divide nHeads (grouped-query attention). */
  nKvHeads: number;
  headDim: number;
}

/** `v.length` when v is a typed array, else 0 (so that the native check reports the bad argument). */
function lengthOf(v: unknown): number {
  return ArrayBuffer.isView(v) ? (v as unknown as { length: number }).length : 0;
}

/**
 * One kernel instruction set and one thread pool. Methods run on the
 * caller's thread (multithreaded ones fork onto the pool); the *Async
 * variants run on a libuv worker and resolve when done; keep their arrays
 * untouched until then. Results are identical for every thread count.
 */
export class Runtime {
  private readonly impl: NativeRuntime;

  /** @throws Error when `isa` is unknown, not compiled in, or not supported by this CPU. */
  constructor(options: RuntimeOptions = {}) {
    this.impl = new native.Runtime(options);
  }

  /** @internal The addon object, for native classes that run on this runtime (NativeSession.forward). */
  get native(): NativeRuntime {
    return this.impl;
  }

  /** The ISA whose kernels this runtime runs. */
  get isa(): string {
    return this.impl.isa;
  }

  /** Threads in the pool, the caller included. */
  get threads(): number {
    return this.impl.threads;
  }

  /**
   * BitNet per-token absmax quantization of x (finite values only).
   * @param q output, at least x.length long; default: a new Int8Array of {@link paddedLength}(x.length).
   */
  quantizeActivations(x: Float32Array, q: Int8Array = new Int8Array(paddedLength(lengthOf(x)))): QuantizedActivations {
    const scale = this.impl.quantizeActivations(x, q);
    return { q, scale };
  }

  /**
   * Decode: for every target, out = (W q) * outScale. All matrices must have
   * the same padded column count; q holds at least that many values.
   */
  gemv(q: Int8Array, targets: readonly TernaryTarget[]): void {
    this.impl.gemv(q, targets);
  }

  /**
   * Prefill: m quantized rows (q: m rows of paddedLength(cols) values) through
   * every target: out[i][n] = (W q_i)[n] * outScale / actScales[i].
   */
  gemm(q: Int8Array, m: number, actScales: Float32Array, targets: readonly TernaryTarget[]): void {
    this.impl.gemm(q, m, actScales, targets);
  }

  /** {@link gemm} on a worker thread. */
  gemmAsync(q: Int8Array, m: number, actScales: Float32Array, targets: readonly TernaryTarget[]): Promise<void> {
    return this.impl.gemmAsync(q, m, actScales, targets);
  }

  /**
   * Single-query attention over an f16 KV cache. q: nHeads * headDim floats;
   * kCache / vCache: tLen positions of nKvHeads * headDim f16 values.
   * @param out default: a new Float32Array of nHeads * headDim.
   */
  attention(q: Float32Array, kCache: Uint16Array, vCache: Uint16Array, shape: AttentionShape,
            out: Float32Array = new Float32Array(lengthOf(q))): Float32Array {
    this.impl.attention(q, kCache, vCache, shape?.tLen, shape?.nHeads, shape?.nKvHeads, shape?.headDim, out);
    return out;
  }

  /** {@link attention} on a worker thread; resolves to `out`. */
  async attentionAsync(q: Float32Array, kCache: Uint16Array, vCache: Uint16Array, shape: AttentionShape,
                       out: Float32Array = new Float32Array(lengthOf(q))): Promise<Float32Array> {
    await this.impl.attentionAsync(q, kCache, vCache, shape?.tLen, shape?.nHeads, shape?.nKvHeads,
                                   shape?.headDim, out);
    return out;
  }

  /**
   * out = x / sqrt(mean(x^2) + eps) * g. `out` may be `x`.
   * @param eps default 1e-5 (BitNet b1.58 2B4T).
   * @param out default: a new Float32Array of x.length.
   */
  rmsnorm(x: Float32Array, g: Float32Array, eps = 1e-5, out: Float32Array = new Float32Array(lengthOf(x))): Float32Array {
    this.impl.rmsnorm(x, g, eps, out);
    return out;
  }

  /** Rotate-half RoPE in place on nHeads heads of headDim; cosHalf/sinHalf hold headDim/2 values. */
  rope(v: Float32Array, nHeads: number, headDim: number, cosHalf: Float32Array, sinHalf: Float32Array): void {
    this.impl.rope(v, nHeads, headDim, cosHalf, sinHalf);
  }

  /** out = relu(gate)^2 * up. @param out default: a new Float32Array of gate.length. */
  relu2Gate(gate: Float32Array, up: Float32Array, out: Float32Array = new Float32Array(lengthOf(gate))): Float32Array {
    this.impl.relu2Gate(gate, up, out);
    return out;
  }

  /** out = silu(gate) * up. @param out default: a new Float32Array of gate.length. */
  siluGate(gate: Float32Array, up: Float32Array, out: Float32Array = new Float32Array(lengthOf(gate))): Float32Array {
    this.impl.siluGate(gate, up, out);
    return out;
  }

  /** y[i] += x[i] for i < y.length. */
  addInPlace(y: Float32Array, x: Float32Array): void {
    this.impl.addInPlace(y, x);
  }

  /** IEEE half bits to floats. @param out default: a new Float32Array of x.length. */
  f16ToF32(x: Uint16Array, out: Float32Array = new Float32Array(lengthOf(x))): Float32Array {
    this.impl.f16ToF32(x, out);
    return out;
  }

  /** Floats to IEEE half bits (round to nearest even). @param out default: a new Uint16Array of x.length. */
  f32ToF16(x: Float32Array, out: Uint16Array = new Uint16Array(lengthOf(x))): Uint16Array {
    this.impl.f32ToF16(x, out);
    return out;
  }

  /** LM head in f16: out[n] = sum_k W[n][k] x[k], W row-major rows x cols. @param out default: new Float32Array(rows). */
  matvecF16(w: Uint16Array, rows: number, cols: number, x: Float32Array,
            out: Float32Array = new Float32Array(Math.max(0, rows | 0))): Float32Array {
    this.impl.matvecF16(w, rows, cols, x, out);
    return out;
  }

  /**
   * LM head in int8: out[n] = (sum_k W8[n][k] q[k]) * rowScale[n] * xInvScale, W8 row-major with
   * row stride colsPadded (a multiple of 64, zero-padded). @param out default: new Float32Array(rows).
   */
  matvecI8(w: Int8Array, rows: number, colsPadded: number, q: Int8Array, rowScale: Float32Array, xInvScale: number,
           out: Float32Array = new Float32Array(Math.max(0, rows | 0))): Float32Array {
    this.impl.matvecI8(w, rows, colsPadded, q, rowScale, xInvScale, out);
    return out;
  }

  /**
   * This machine's streaming read bandwidth with this runtime's threads, in bytes per second
   * (best of 3 passes over a `mib`-MiB buffer, each pass reading it once with each of four
   * read loops: no software prefetch, T0 prefetch 16 KB ahead, non-temporal prefetch 4 KB ahead,
   * and that plus one prefetch per page 16 KB ahead;
   * keep it well above the last-level cache). Takes about a second; decode cannot
   * be faster than this divided by the bytes read per token.
   * @param mib buffer size, 1..65536 MiB; default 512
   */
  measureReadBandwidth(mib = 512): number {
    return this.impl.measureReadBandwidth(mib);
  }

  /**
   * How much of their time the host takes from this runtime's threads: every thread of the pool
   * reads the clock in a loop for `ms` milliseconds, all at once, and the gaps of more than 2 us
   * between two reads are time it did not run (another process, or on a VM the host). An op that
   * needs every thread waits for whichever is stopped, so benchmarks print this beside their
   * numbers. Blocks the calling thread for `ms`.
   * @param ms 1..10000; default 500
   */
  measureOffCpu(ms = 500): OffCpuThread[] {
    return this.impl.measureOffCpu(ms);
  }

  /**
   * The indices of the k largest values, largest first; equal values in index order, NaN
   * ranked by its bits (above +Infinity when positive). Runs on the calling thread, not on the
   * pool, so it never waits for another session's forward pass.
   * @param k 1..values.length
   * @param out default: new Int32Array(k)
   */
  topK(values: Float32Array, k: number, out: Int32Array = new Int32Array(Math.max(0, k | 0))): Int32Array {
    this.impl.topK(values, k, out);
    return out.length === k ? out : out.subarray(0, k);
  }
}
