// The N-API surface against plain TypeScript references, its argument
// checking, ISA forcing through BITNET_ISA, and thread-count independence.
import { spawnSync } from 'child_process';
import * as path from 'path';

import {
  Runtime,
  TernaryMatrix,
  TernaryTarget,
  activeIsa,
  allocAligned,
  cpuFeatures,
  defaultThreadCount,
  layout,
  packTernary,
  paddedLength,
  runnableIsas,
} from '../src/index';
import { topKIndices } from '../src/generation/sampler';

// ---- deterministic inputs ---------------------------------------------------

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}
const rand = rng(12345);
const floats = (n: number, scale = 1): Float32Array => Float32Array.from({ length: n }, () => (rand() * 2 - 1) * scale);
const ternary = (n: number): Int8Array => Int8Array.from({ length: n }, () => Math.floor(rand() * 3) - 1);
const int8s = (n: number): Int8Array => Int8Array.from({ length: n }, () => Math.floor(rand() * 256) - 128);

// ---- plain TypeScript references -------------------------------------------

const f32 = Math.fround;

function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d !== 0.5) return d < 0.5 ? f : f + 1;
  return f % 2 === 0 ? f : f + 1;
}

function refQuantize(x: Float32Array, paddedLen: number): { q: Int8Array; scale: number } {
  let absmax = 0;
  for (const v of x) absmax = Math.max(absmax, Math.abs(v));
  const scale = f32(127 / Math.max(absmax, f32(1e-5)));
  const q = new Int8Array(paddedLen);
  x.forEach((v, i) => (q[i] = Math.min(127, Math.max(-128, roundHalfEven(f32(v * scale))))));
  return { q, scale };
}

/** y[n] = f32(sum_k W[n][k] q[k]) * scale, in float32 like the kernels. */
function refTernaryRow(w: Int8Array, cols: number, q: Int8Array, n: number, scale: number): number {
  let s = 0;
  for (let k = 0; k < cols; ++k) s += w[n * cols + k] * q[k];
  return f32(s * scale);
}

function f16Bits(f: number): number {
  const u = new Uint32Array(new Float32Array([f]).buffer)[0];
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  let mant = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1), half = 1 << (shift - 1);
    if (rem > half || (rem === half && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++;
  return sign | h;
}

function f16Value(h: number): number {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-5): void {
  expect(actual.length).toBeGreaterThanOrEqual(expected.length);
  for (let i = 0; i < expected.length; ++i) {
    const err = Math.abs(actual[i] - expected[i]);
    if (err > tol * (1 + Math.abs(expected[i]))) {
      throw new Error(`element ${i}: got ${actual[i]}, expected ${expected[i]}`);
    }
  }
}

/**
 * Errors made by the addon come from Node's own realm, not jest's sandbox, so
 * they are checked by name and message rather than instanceof.
 */
function expectError(call: () => unknown, name: string, message: string | RegExp): void {
  let thrown: unknown;
  try {
    call();
  } catch (e) {
    thrown = e;
  }
  if (!thrown) throw new Error(`expected ${name} "${message}", nothing was thrown`);
  const err = thrown as Error;
  expect(err.name).toBe(name);
  if (typeof message === 'string') expect(err.message).toBe(message);
  else expect(err.message).toMatch(message);
}

/** Typed arrays made by the addon belong to Node's realm: compare elements. */
function expectSameElements(actual: ArrayLike<number>, expected: ArrayLike<number>): void {
  expect(Array.from(actual)).toEqual(Array.from(expected));
}

// ---- runtime information -----------------------------------------------------

describe('runtime information', () => {
  test('ISAs, CPU features, threads and layout', () => {
    const isas = runnableIsas();
    expect(isas).toContain('scalar');
    expect(isas[isas.length - 1]).toBe('scalar');
    expect(isas).toContain(activeIsa());
    expect(Array.isArray(cpuFeatures())).toBe(true);
    if (process.arch === 'x64' && isas.includes('avx2')) expect(cpuFeatures()).toContain('avx2');
    expect(defaultThreadCount()).toBeGreaterThanOrEqual(1);
    expect(layout).toEqual({ rowTile: 64, chunkCols: 128, weightAlign: 64 });
    expect(paddedLength(1)).toBe(128);
    expect(paddedLength(256)).toBe(256);
  });

  test('Runtime options: defaults, threads and isa', () => {
    const rt = new Runtime();
    expect(rt.isa).toBe(activeIsa());
    expect(rt.threads).toBe(defaultThreadCount());
    const scalar = new Runtime({ threads: 3, isa: 'scalar' });
    expect(scalar.isa).toBe('scalar');
    expect(scalar.threads).toBe(3);
  });

  test('measureReadBandwidth reads a buffer and reports bytes per second', () => {
    const rt = new Runtime({ threads: 2 });
    const bandwidth = rt.measureReadBandwidth(64);
    expect(Number.isFinite(bandwidth) && bandwidth > 1e8).toBe(true);
    expectError(() => rt.measureReadBandwidth(0), 'RangeError', /^measureReadBandwidth: mib must be an integer in \[1, 65536\]/);
  });

  test('measureOffCpu watches every thread of the pool for the time it does not run', () => {
    const rt = new Runtime({ threads: 2 });
    const threads = rt.measureOffCpu(50);
    expect(threads).toHaveLength(2);
    for (const t of threads) {
      expect(t.fraction).toBeGreaterThanOrEqual(0);
      expect(t.fraction).toBeLessThan(1);
      expect(Number.isInteger(t.gaps) && t.gaps >= 0).toBe(true);
      // A median gap is one of the gaps, each over 2 us; none without gaps.
      if (t.gaps > 0) expect(t.medianGapMs).toBeGreaterThan(0.002);
      else expect(t.medianGapMs).toBe(0);
      if (t.gaps < 2) expect(t.medianPeriodMs).toBe(0);
      else expect(t.medianPeriodMs).toBeGreaterThan(0);
    }
    expectError(() => rt.measureOffCpu(0), 'RangeError', /^measureOffCpu: ms must be an integer in \[1, 10000\]/);
    expectError(() => rt.measureOffCpu('x' as unknown as number), 'TypeError', /^measureOffCpu: ms/);
  });
});

// ---- TernaryMatrix -------------------------------------------------------------

describe('TernaryMatrix', () => {
  const rows = 70, cols = 200;
  const values = ternary(rows * cols);

  test('fromValues round-trips through unpack and exposes its fields', () => {
    const m = TernaryMatrix.fromValues(values, rows, cols, 0.25);
    expect(m).toBeInstanceOf(TernaryMatrix);
    expect([m.rows, m.cols, m.scale]).toEqual([rows, cols, 0.25]);
    expect(m.planes.length).toBe(128 * 256 / 4);
    expectSameElements(m.unpack(), values);
  });

  test('wrapping packed planes makes no copy', () => {
    const planes = packTernary(values, rows, cols);
    const m = new TernaryMatrix(planes, rows, cols, 1);
    expect(m.planes).toBe(planes);
    planes.fill(0);  // zero planes are valid weights: the matrix sees the change
    expect(m.unpack().every((v) => v === 0)).toBe(true);
  });

  test('allocAligned gives memory a matrix can wrap', () => {
    const planes = allocAligned(packTernary(values, rows, cols).length);
    planes.set(packTernary(values, rows, cols));
    expectSameElements(new TernaryMatrix(planes, rows, cols, 1).unpack(), values);
  });

  test('invalid planes name the row and column of the first bad weight', () => {
    const planes = packTernary(values, rows, cols);
    // Row 5, column 10: chunk 0, tile 0 of a 2-tile quad, group 1 (at (1 * 2 + 0) * 128), bit 2
    // in both planes.
    planes[(1 * 2 + 0) * 128 + 5] |= 1 << 2;
    planes[(1 * 2 + 0) * 128 + 64 + 5] |= 1 << 2;
    expectError(() => new TernaryMatrix(planes, rows, cols, 1), 'RangeError',
      'TernaryMatrix: planes holds an invalid weight at row 5, column 10 (both plane bits set)');
  });

  test('a set bit in the padding rows is refused with its position', () => {
    const planes = packTernary(values, rows, cols);
    // Row 100 of a 70-row matrix: chunk 0, tile 1 (rows 64..127) of a 2-tile quad, group 0
    // (at (0 * 2 + 1) * 128), byte 36, bit 0.
    planes[(0 * 2 + 1) * 128 + 36] |= 1;
    expectError(() => new TernaryMatrix(planes, rows, cols, 1), 'RangeError',
      'TernaryMatrix: planes holds an invalid weight at row 100, column 0 (a nonzero bit in the padding)');
  });

  test('misaligned, mis-sized or mistyped planes are refused', () => {
    const bytes = packTernary(values, rows, cols).length;
    const misaligned = allocAligned(bytes + 64).subarray(3, 3 + bytes);
    expectError(() => new TernaryMatrix(misaligned, rows, cols, 1), 'RangeError',
      /^TernaryMatrix: planes must start on a 64-byte boundary \(it starts 3 bytes past one\)/);
    expectError(() => new TernaryMatrix(allocAligned(bytes - 1), rows, cols, 1), 'RangeError',
      `TernaryMatrix: planes must hold exactly ${bytes} bytes for a 70 x 200 matrix (it has ${bytes - 1})`);
    expectError(() => new TernaryMatrix(new Int8Array(bytes) as never, rows, cols, 1), 'TypeError',
      'TernaryMatrix: planes must be a Uint8Array');
    expectError(() => new TernaryMatrix(allocAligned(bytes), 0, cols, 1), 'RangeError',
      /^TernaryMatrix: rows must be an integer in \[1, \d+\] \(got 0\)$/);
    expectError(() => new TernaryMatrix(allocAligned(bytes), rows, cols, NaN), 'RangeError',
      'TernaryMatrix: scale must be a finite number (got NaN)');
  });

  test('packTernary names the first value outside {-1, 0, 1}', () => {
    const bad = values.slice();
    bad[3 * cols + 7] = 2;
    expectError(() => packTernary(bad, rows, cols), 'RangeError',
      'packTernary: values holds 2 at row 3, column 7; weights must be -1, 0 or 1');
    expectError(() => packTernary(values, rows, cols + 1), 'RangeError',
      'packTernary: values must be an Int8Array of at least 14070 elements (it has 14000)');
    expectError(() => packTernary(values, rows - 1, cols), 'RangeError',
      'packTernary: values must hold exactly rows * cols = 13800 elements (it has 14000)');
  });
});

// ---- kernels against references, on every runnable ISA ---------------------------

describe.each(runnableIsas())('kernels on %s', (isa) => {
  const rt = new Runtime({ isa, threads: 2 });

  test('quantizeActivations', () => {
    const x = floats(300, 3);
    const { q, scale } = rt.quantizeActivations(x);
    const ref = refQuantize(x, paddedLength(300));
    expect(q.length).toBe(384);
    expect(scale).toBe(ref.scale);
    expect(q).toEqual(ref.q);
    expect(rt.quantizeActivations(new Float32Array(5)).scale).toBe(f32(127 / f32(1e-5)));
  });

  test('gemv over several targets', () => {
    const cols = 300;
    const shapes = [70, 64, 5];
    const mats = shapes.map((rows) => ({ rows, w: ternary(rows * cols) }));
    const { q, scale } = rt.quantizeActivations(floats(cols));
    const targets: TernaryTarget[] = mats.map(({ rows, w }, i) => ({
      matrix: TernaryMatrix.fromValues(w, rows, cols, 0.5 + i),
      outScale: (0.5 + i) / scale,
      out: new Float32Array(rows),
    }));
    rt.gemv(q, targets);
    targets.forEach((t, i) => {
      const { rows, w } = mats[i];
      const ref = Float32Array.from({ length: rows }, (_, n) => refTernaryRow(w, cols, q, n, f32(t.outScale)));
      expect(t.out).toEqual(ref);
    });
  });

  test('gemm and gemmAsync', async () => {
    const rows = 130, cols = 200, m = 3, stride = paddedLength(cols);
    const w = ternary(rows * cols);
    const q = new Int8Array(m * stride);
    const actScales = new Float32Array(m);
    for (let i = 0; i < m; ++i) {
      const r = rt.quantizeActivations(floats(cols), q.subarray(i * stride, (i + 1) * stride));
      actScales[i] = r.scale;
    }
    const matrix = TernaryMatrix.fromValues(w, rows, cols, 0.75);
    const out = new Float32Array(m * rows);
    rt.gemm(q, m, actScales, [{ matrix, outScale: 0.75, out }]);
    for (let i = 0; i < m; ++i) {
      const rowScale = f32(0.75 / actScales[i]);
      const ref = Float32Array.from({ length: rows }, (_, n) =>
        refTernaryRow(w, cols, q.subarray(i * stride), n, rowScale));
      expect(out.subarray(i * rows, (i + 1) * rows)).toEqual(ref);
    }
    const outAsync = new Float32Array(m * rows);
    await expect(rt.gemmAsync(q, m, actScales, [{ matrix, outScale: 0.75, out: outAsync }])).resolves.toBeUndefined();
    expect(outAsync).toEqual(out);
  });

  test('rmsnorm', () => {
    const x = floats(100, 2), g = floats(100);
    const mean = x.reduce((s, v) => s + v * v, 0) / x.length;
    const inv = 1 / Math.sqrt(mean + 1e-5);
    expectClose(rt.rmsnorm(x, g), Array.from(x, (v, i) => v * inv * g[i]));
    const inPlace = x.slice();
    rt.rmsnorm(inPlace, g, 1e-5, inPlace);
    expect(inPlace).toEqual(rt.rmsnorm(x, g));
  });

  test('rope', () => {
    const nHeads = 3, headDim = 16, half = headDim / 2;
    const v = floats(nHeads * headDim);
    const angles = Array.from({ length: half }, (_, j) => 7 * Math.pow(500000, -j / half));
    const cos = Float32Array.from(angles, Math.cos), sin = Float32Array.from(angles, Math.sin);
    const ref = Array.from(v);
    for (let h = 0; h < nHeads; ++h) {
      for (let j = 0; j < half; ++j) {
        const a = v[h * headDim + j], b = v[h * headDim + j + half];
        ref[h * headDim + j] = a * cos[j] - b * sin[j];
        ref[h * headDim + j + half] = b * cos[j] + a * sin[j];
      }
    }
    const out = v.slice();
    rt.rope(out, nHeads, headDim, cos, sin);
    expectClose(out, ref);
  });

  test('attention (grouped-query) and attentionAsync', async () => {
    const tLen = 37, nHeads = 4, nKvHeads = 2, headDim = 32, kvStride = nKvHeads * headDim;
    const q = floats(nHeads * headDim);
    const kCache = rt.f32ToF16(floats(tLen * kvStride));
    const vCache = rt.f32ToF16(floats(tLen * kvStride));
    const ref = new Float64Array(nHeads * headDim);
    for (let h = 0; h < nHeads; ++h) {
      const kv = Math.floor(h / (nHeads / nKvHeads)) * headDim;
      const scores = Array.from({ length: tLen }, (_, t) => {
        let s = 0;
        for (let d = 0; d < headDim; ++d) s += q[h * headDim + d] * f16Value(kCache[t * kvStride + kv + d]);
        return s / Math.sqrt(headDim);
      });
      const mx = Math.max(...scores);
      const p = scores.map((s) => Math.exp(s - mx));
      const sum = p.reduce((a, b) => a + b, 0);
      for (let t = 0; t < tLen; ++t) {
        for (let d = 0; d < headDim; ++d) ref[h * headDim + d] += (p[t] / sum) * f16Value(vCache[t * kvStride + kv + d]);
      }
    }
    const shape = { tLen, nHeads, nKvHeads, headDim };
    const out = rt.attention(q, kCache, vCache, shape);
    expectClose(out, ref, 1e-4);
    expect(await rt.attentionAsync(q, kCache, vCache, shape)).toEqual(out);
  });

  test('relu2Gate, siluGate, addInPlace', () => {
    const gate = floats(77, 4), up = floats(77, 2);
    expectClose(rt.relu2Gate(gate, up), Array.from(gate, (g, i) => Math.max(g, 0) ** 2 * up[i]));
    expectClose(rt.siluGate(gate, up), Array.from(gate, (g, i) => (g / (1 + Math.exp(-g))) * up[i]));
    const y = gate.slice();
    rt.addInPlace(y, up);
    expect(y).toEqual(Float32Array.from(gate, (g, i) => f32(g + up[i])));
  });

  test('f16 <-> f32', () => {
    const specials = [0, -0, 1, -2.5, 65504, 65520, 1e6, -1e6, 2 ** -24, 2 ** -25, 3 * 2 ** -26, 6.1e-5, Infinity, -Infinity];
    const x = Float32Array.from([...specials, ...floats(200, 1000), ...floats(50, 1e-5)]);
    const h = rt.f32ToF16(x);
    expect(Array.from(h)).toEqual(Array.from(x, f16Bits));
    const allHalves = Uint16Array.from({ length: 65536 }, (_, i) => i);
    const back = rt.f16ToF32(allHalves);
    allHalves.forEach((bits, i) => {
      const want = f16Value(bits);
      if (Number.isNaN(want)) expect(Number.isNaN(back[i])).toBe(true);
      else expect(Object.is(back[i], want)).toBe(true);
    });
    const nan = rt.f32ToF16(new Float32Array([NaN]))[0];
    expect(nan & 0x7c00).toBe(0x7c00);
    expect(nan & 0x3ff).not.toBe(0);
  });

  test('matvecF16 and matvecI8 (LM head)', () => {
    const rows = 150, cols = 100, colsPadded = 128;
    const w16 = rt.f32ToF16(floats(rows * cols));
    const x = floats(cols);
    const ref16 = Array.from({ length: rows }, (_, n) => {
      let s = 0;
      for (let k = 0; k < cols; ++k) s += f16Value(w16[n * cols + k]) * x[k];
      return s;
    });
    expectClose(rt.matvecF16(w16, rows, cols, x), ref16, 1e-4);

    const w8 = new Int8Array(rows * colsPadded);
    for (let n = 0; n < rows; ++n) w8.set(int8s(cols), n * colsPadded);
    const q = new Int8Array(colsPadded);
    q.set(int8s(cols));
    const rowScale = floats(rows);
    const ref8 = Array.from({ length: rows }, (_, n) => {
      let s = 0;
      for (let k = 0; k < colsPadded; ++k) s += w8[n * colsPadded + k] * q[k];
      return s * rowScale[n] * 0.01;
    });
    expectClose(rt.matvecI8(w8, rows, colsPadded, q, rowScale, 0.01), ref8);
  });

  test('topK ranks like the JavaScript sampler, ties by index', () => {
    // Few distinct values (ties at every rank), negatives and -Infinity; longer than one native piece.
    const values = Float32Array.from({ length: 20000 }, () => Math.floor(rand() * 64) / 4 - 8);
    for (let i = 0; i < 50; i++) values[Math.floor(rand() * values.length)] = -Infinity;
    for (const k of [1, 7, 40, 64, 1000]) {
      expect(Array.from(rt.topK(values, k))).toEqual(topKIndices(values, k));
    }
    const all = Float32Array.from([3, -Infinity, 3, 5, -1]);
    expect(Array.from(rt.topK(all, 5))).toEqual([3, 0, 2, 4, 1]);
    const out = new Int32Array(10);
    expect(rt.topK(all, 2, out)).toEqual(Int32Array.from([3, 0]));
  });
});

// ---- thread counts -------------------------------------------------------------

test('gemv and gemm give identical results with 1, 2 and 3 threads', () => {
  const rows = 300, cols = 1000, m = 2, stride = paddedLength(cols);
  const matrix = TernaryMatrix.fromValues(ternary(rows * cols), rows, cols, 1);
  const q = new Int8Array(m * stride);
  q.set(int8s(cols));
  q.set(int8s(cols), stride);
  const results = [1, 2, 3].map((threads) => {
    const rt = new Runtime({ threads });
    const gemvOut = new Float32Array(rows);
    rt.gemv(q, [{ matrix, outScale: 0.01, out: gemvOut }]);
    const gemmOut = new Float32Array(m * rows);
    rt.gemm(q, m, new Float32Array([1, 2]), [{ matrix, outScale: 0.01, out: gemmOut }]);
    return { gemvOut, gemmOut };
  });
  expect(results[0].gemvOut.some((v) => v !== 0)).toBe(true);
  expect(results[1]).toEqual(results[0]);
  expect(results[2]).toEqual(results[0]);
});

// ---- argument checking -----------------------------------------------------------

describe('argument checking', () => {
  const rt = new Runtime({ threads: 2 });
  const cols = 200, rows = 10;
  const matrix = TernaryMatrix.fromValues(ternary(rows * cols), rows, cols, 1);
  const wide = TernaryMatrix.fromValues(ternary(rows * 300), rows, 300, 1);
  const q = new Int8Array(paddedLength(cols));
  const out = new Float32Array(rows);
  const f = new Float32Array(8);
  const detached = (): Float32Array => {
    const a = new Float32Array(8);
    structuredClone(a.buffer, { transfer: [a.buffer] });
    return a;
  };
  const any = (v: unknown): never => v as never;

  type Case = [string, () => unknown, string, RegExp | string];
  const cases: Case[] = [
    ['gemv q type', () => rt.gemv(any(new Uint8Array(256)), [{ matrix, outScale: 1, out }]), 'TypeError',
      'gemv: q must be an Int8Array of at least 256 elements'],
    ['gemv q length', () => rt.gemv(new Int8Array(200), [{ matrix, outScale: 1, out }]), 'RangeError',
      'gemv: q must be an Int8Array of at least 256 elements (it has 200)'],
    ['gemv targets not array', () => rt.gemv(q, any({})), 'TypeError', 'gemv: targets must be an array'],
    ['gemv no targets', () => rt.gemv(q, []), 'RangeError', 'gemv: targets must hold at least one target'],
    ['gemv target not object', () => rt.gemv(q, any([5])), 'TypeError', 'gemv: targets[0] must be an object'],
    ['gemv matrix type', () => rt.gemv(q, any([{ matrix: {}, outScale: 1, out }])), 'TypeError',
      'gemv: targets[0].matrix must be a TernaryMatrix'],
    ['gemv matrix without a native object', () => rt.gemv(q, [{ matrix: Object.create(TernaryMatrix.prototype), outScale: 1, out }]),
      'TypeError', 'gemv: targets[0].matrix must be a TernaryMatrix'],
    ['gemv outScale type', () => rt.gemv(q, any([{ matrix, outScale: '1', out }])), 'TypeError',
      'gemv: targets[0].outScale must be a finite number'],
    ['gemv outScale value', () => rt.gemv(q, [{ matrix, outScale: Infinity, out }]), 'RangeError',
      'gemv: targets[0].outScale must be a finite number (got Infinity)'],
    ['gemv out length', () => rt.gemv(q, [{ matrix, outScale: 1, out }, { matrix, outScale: 1, out: new Float32Array(9) }]),
      'RangeError', 'gemv: targets[1].out must be a Float32Array of at least 10 elements (it has 9)'],
    ['gemv out type', () => rt.gemv(q, [{ matrix, outScale: 1, out: any(new Float64Array(10)) }]), 'TypeError',
      'gemv: targets[0].out must be a Float32Array of at least 10 elements'],
    ['gemv out detached', () => rt.gemv(q, [{ matrix, outScale: 1, out: detached() }]), 'TypeError',
      'gemv: targets[0].out is backed by a detached ArrayBuffer'],
    ['gemv mixed widths', () => rt.gemv(new Int8Array(384), [{ matrix, outScale: 1, out }, { matrix: wide, outScale: 1, out }]),
      'RangeError', 'gemv: targets[1].matrix has 384 padded columns but targets[0].matrix has 256; targets of one call share one input'],
    ['gemm m', () => rt.gemm(q, 0, f, [{ matrix, outScale: 1, out }]), 'RangeError', /gemm: m must be an integer in \[1, \d+\] \(got 0\)/],
    ['gemm m type', () => rt.gemm(q, any('2'), f, [{ matrix, outScale: 1, out }]), 'TypeError', /gemm: m must be an integer/],
    ['gemm q length', () => rt.gemm(q, 2, f, [{ matrix, outScale: 1, out: new Float32Array(20) }]), 'RangeError',
      'gemm: q must be an Int8Array of at least 512 elements (it has 256)'],
    ['gemm out length', () => rt.gemm(new Int8Array(512), 2, f, [{ matrix, outScale: 1, out }]), 'RangeError',
      'gemm: targets[0].out must be a Float32Array of at least 20 elements (it has 10)'],
    ['gemm actScales', () => rt.gemm(q, 1, new Float32Array(0), [{ matrix, outScale: 1, out }]), 'RangeError',
      'gemm: actScales must be a Float32Array of at least 1 elements (it has 0)'],
    ['quantize x type', () => rt.quantizeActivations(any([1, 2])), 'TypeError', 'quantizeActivations: x must be a Float32Array'],
    ['quantize x NaN', () => rt.quantizeActivations(new Float32Array([1, NaN])), 'RangeError',
      'quantizeActivations: x[1] must be finite (got nan)'],
    ['quantize q length', () => rt.quantizeActivations(f, new Int8Array(4)), 'RangeError',
      'quantizeActivations: q must be an Int8Array of at least 8 elements (it has 4)'],
    ['quantize x detached', () => rt.quantizeActivations(detached(), new Int8Array(8)), 'TypeError',
      'quantizeActivations: x is backed by a detached ArrayBuffer'],
    ['rmsnorm g', () => rt.rmsnorm(f, new Float32Array(4)), 'RangeError',
      'rmsnorm: g must be a Float32Array of at least 8 elements (it has 4)'],
    ['rmsnorm eps', () => rt.rmsnorm(f, f, any(null)), 'TypeError', 'rmsnorm: eps must be a finite number'],
    ['rope odd headDim', () => rt.rope(f, 1, 7, f, f), 'RangeError', 'rope: headDim must be even (got 7)'],
    ['rope v length', () => rt.rope(f, 2, 8, f, f), 'RangeError', 'rope: v must be a Float32Array of at least 16 elements (it has 8)'],
    ['rope sin', () => rt.rope(f, 1, 8, f, new Float32Array(3)), 'RangeError',
      'rope: sinHalf must be a Float32Array of at least 4 elements (it has 3)'],
    ['attention nKvHeads', () => rt.attention(f, new Uint16Array(8), new Uint16Array(8), { tLen: 1, nHeads: 3, nKvHeads: 2, headDim: 2 }),
      'RangeError', 'attention: nKvHeads must divide nHeads = 3 (got 2)'],
    ['attention tLen', () => rt.attention(f, new Uint16Array(8), new Uint16Array(8), { tLen: 0, nHeads: 1, nKvHeads: 1, headDim: 8 }),
      'RangeError', /attention: tLen must be an integer in \[1, \d+\] \(got 0\)/],
    ['attention shape missing', () => rt.attention(f, new Uint16Array(8), new Uint16Array(8), any(undefined)),
      'TypeError', /attention: tLen must be an integer/],
    ['attention kCache type', () => rt.attention(f, any(f), new Uint16Array(8), { tLen: 1, nHeads: 1, nKvHeads: 1, headDim: 8 }),
      'TypeError', 'attention: kCache must be a Uint16Array of at least 8 elements'],
    ['attention vCache length', () => rt.attention(f, new Uint16Array(16), new Uint16Array(8), { tLen: 2, nHeads: 1, nKvHeads: 1, headDim: 8 }),
      'RangeError', 'attention: vCache must be a Uint16Array of at least 16 elements (it has 8)'],
    ['attention non-integer', () => rt.attention(f, new Uint16Array(8), new Uint16Array(8), { tLen: 1.5, nHeads: 1, nKvHeads: 1, headDim: 8 }),
      'RangeError', /attention: tLen must be an integer in \[1, \d+\] \(got 1.5\)/],
    ['relu2Gate up', () => rt.relu2Gate(f, new Float32Array(2)), 'RangeError',
      'relu2Gate: up must be a Float32Array of at least 8 elements (it has 2)'],
    ['siluGate out', () => rt.siluGate(f, f, new Float32Array(2)), 'RangeError',
      'siluGate: out must be a Float32Array of at least 8 elements (it has 2)'],
    ['addInPlace x', () => rt.addInPlace(f, any(new Uint16Array(8))), 'TypeError',
      'addInPlace: x must be a Float32Array of at least 8 elements'],
    ['f16ToF32 x', () => rt.f16ToF32(any(new Int16Array(8))), 'TypeError', 'f16ToF32: x must be a Uint16Array'],
    ['f32ToF16 out', () => rt.f32ToF16(f, new Uint16Array(2)), 'RangeError',
      'f32ToF16: out must be a Uint16Array of at least 8 elements (it has 2)'],
    ['topK k 0', () => rt.topK(f, 0), 'RangeError', 'topK: k must be an integer in [1, 8] (got 0)'],
    ['topK k too large', () => rt.topK(f, 9), 'RangeError', 'topK: k must be an integer in [1, 8] (got 9)'],
    ['topK values', () => rt.topK(any(new Int32Array(8)), 1), 'TypeError', 'topK: values must be a Float32Array'],
    ['topK out', () => rt.topK(f, 4, new Int32Array(2)), 'RangeError',
      'topK: out must be an Int32Array of at least 4 elements (it has 2)'],
    ['matvecF16 w', () => rt.matvecF16(new Uint16Array(10), 4, 4, f), 'RangeError',
      'matvecF16: w must be a Uint16Array of at least 16 elements (it has 10)'],
    ['matvecI8 colsPadded', () => rt.matvecI8(new Int8Array(100), 1, 100, new Int8Array(100), f, 1), 'RangeError',
      'matvecI8: colsPadded must be a multiple of 64 (got 100)'],
    ['matvecI8 rowScale', () => rt.matvecI8(new Int8Array(128), 2, 64, new Int8Array(64), new Float32Array(1), 1), 'RangeError',
      'matvecI8: rowScale must be a Float32Array of at least 2 elements (it has 1)'],
    ['matvecI8 huge', () => rt.matvecI8(new Int8Array(64), 2 ** 31, 2 ** 31, new Int8Array(64), f, 1), 'RangeError',
      'matvecI8: w must be an Int8Array of at least 4611686018427387904 elements (it has 64)'],
    ['Runtime threads', () => new Runtime({ threads: 0 }), 'RangeError', 'Runtime: options.threads must be an integer in [1, 1024] (got 0)'],
    ['Runtime isa type', () => new Runtime({ isa: any(3) }), 'TypeError', 'Runtime: options.isa must be a string'],
    ['Runtime unknown isa', () => new Runtime({ isa: 'sse9' }), 'Error',
      'Runtime: unknown ISA "sse9" (expected one of: avx512, avx2, neon, scalar, auto)'],
    ['allocAligned', () => allocAligned(-1), 'RangeError', /allocAligned: bytes must be an integer in \[0, \d+\] \(got -1\)/],
  ];

  test.each(cases)('%s', (_name, call, errorName, message) => {
    expectError(call, errorName, message);
  });

  test('a matrix whose planes were detached is refused, not read', () => {
    const planes = packTernary(ternary(rows * cols), rows, cols);
    const m = new TernaryMatrix(planes, rows, cols, 1);
    structuredClone(planes.buffer, { transfer: [planes.buffer as ArrayBuffer] });
    expectError(() => rt.gemv(q, [{ matrix: m, outScale: 1, out }]), 'TypeError',
      'gemv: targets[0].matrix.planes is backed by a detached ArrayBuffer');
    expectError(() => m.unpack(), 'TypeError', 'TernaryMatrix.unpack: this.planes is backed by a detached ArrayBuffer');
  });

  test('async variants check their arguments before queueing any work', async () => {
    const short = new Float32Array(1);
    expectError(() => rt.gemmAsync(q, 1, f, [{ matrix, outScale: 1, out: short }]), 'RangeError',
      'gemmAsync: targets[0].out must be a Float32Array of at least 10 elements (it has 1)');
    const rejected = await rt
      .attentionAsync(f, new Uint16Array(8), new Uint16Array(8), { tLen: 2, nHeads: 1, nKvHeads: 1, headDim: 8 })
      .then(() => undefined, (e: Error) => e);
    expect(rejected?.name).toBe('RangeError');
    expect(rejected?.message).toBe('attentionAsync: kCache must be a Uint16Array of at least 16 elements (it has 8)');
    expect(short[0]).toBe(0);
  });
});

// ---- BITNET_ISA forcing (child processes: the choice is made once per process) ---

describe('BITNET_ISA', () => {
  const root = path.resolve(__dirname, '..');
  const probe = `
    const b = require('node-gyp-build')(${JSON.stringify(root)});
    try { console.log(JSON.stringify({ active: b.activeIsa(), runtime: new b.Runtime().isa })); }
    catch (e) { console.log(JSON.stringify({ error: e.constructor.name + ': ' + e.message })); }`;
  const run = (isa: string): { active?: string; runtime?: string; error?: string } => {
    const child = spawnSync(process.execPath, ['-e', probe], { env: { ...process.env, BITNET_ISA: isa }, encoding: 'utf8' });
    expect(child.status).toBe(0);
    return JSON.parse(child.stdout);
  };

  test.each(runnableIsas())('BITNET_ISA=%s selects it', (isa) => {
    expect(run(isa)).toEqual({ active: isa, runtime: isa });
  });

  test('BITNET_ISA=auto selects the best', () => {
    expect(run('auto')).toEqual({ active: runnableIsas()[0], runtime: runnableIsas()[0] });
  });

  test('an unknown ISA is a clear error', () => {
    expect(run('sse9').error).toBe(
      'Error: activeIsa: BITNET_ISA: unknown ISA "sse9" (expected one of: avx512, avx2, neon, scalar, auto)');
  });

  test('an ISA this CPU or build cannot run is a clear error', () => {
    const missing = ['avx512', 'avx2', 'neon'].find((isa) => !runnableIsas().includes(isa))!;
    expect(run(missing).error).toMatch(
      new RegExp(`^Error: activeIsa: BITNET_ISA: ISA "${missing}" is not (compiled into this build of bitnet-gen|supported by this CPU)`));
  });
});
