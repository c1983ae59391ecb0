/**
 * Decoders and encoders for every on-disk form of a BitNet ternary weight (reference 2.1, 2.4,
 * 3a, 3c, 3e). Every decoder yields the same logical form: a row-major [rows][cols] matrix of
 * {-1, 0, +1} and the tensor's single scale β, so that y = β · Σ_k w[n,k]·q_k / s.
 */
import { fail, TensorLocation } from './errors';
import { f16ToF32, f32ToF16 } from './float16';

// Math/Number members are bound once: global lookups inside hot loops are slow in VM contexts (jest).
const { abs, floor, fround, max } = Math;
const isFiniteNumber = Number.isFinite;

/** A per-tensor ternary weight in logical (PyTorch) orientation. */
export interface TernaryMatrix {
  /** Output features (PyTorch dim 0, GGUF ne1). */
  rows: number;
  /** Input features (PyTorch dim 1, GGUF ne0). */
  cols: number;
  /** rows*cols values in {-1, 0, 1}, row-major. */
  values: Int8Array;
  /** β: the effective weight is scale * values. */
  scale: number;
}

/** Codes 0, 1, 2 stand for -1, 0, +1 in HF packing, I2_S and TQ2_0; code 3 is invalid. */
const INVALID_CODE = 3;

/** How an HF `weight_scale` relates to β (reference 2.4). */
export type WeightScaleMeaning = 'multiply' | 'divide';

/**
 * Turns a stored HF weight_scale into β: autobitlinear stores β ('multiply'), bitlinear stores
 * 1/β ('divide'). Rejects NaN, infinities and non-positive values.
 */
export function betaFromWeightScale(weightScale: number, meaning: WeightScaleMeaning, where: TensorLocation): number {
  if (!isFiniteNumber(weightScale) || weightScale <= 0) fail(where, `weight_scale ${weightScale} is not a finite positive number`);
  return meaning === 'multiply' ? weightScale : fround(1 / weightScale);
}

/** Rejects scales that cannot be a BitNet β (NaN, infinite, negative). Zero is allowed only for all-zero tensors. */
export function checkScale(scale: number, where: TensorLocation): void {
  if (!isFiniteNumber(scale) || scale < 0) fail(where, `scale ${scale} is not a finite non-negative number`);
}

function checkShape(rows: number, cols: number, where: TensorLocation): void {
  if (!Number.isSafeInteger(rows) || !Number.isSafeInteger(cols) || rows <= 0 || cols <= 0) fail(where, `invalid ternary shape [${rows}, ${cols}]`);
}

function checkLength(bytes: Uint8Array, expected: number, format: string, where: TensorLocation): void {
  if (bytes.length !== expected) fail(where, `${format} data is ${bytes.length} bytes, expected ${expected}`);
}

function invalidCode(where: TensorLocation, format: string, element: number): never {
  return fail(where, `${format} holds code 3 (not a ternary value) at element ${element}`);
}

function checkTernary(values: Int8Array, where: TensorLocation): void {
  for (let i = 0; i < values.length; i++) {
    if (values[i] < -1 || values[i] > 1) fail(where, `value ${values[i]} at element ${i} is not ternary`);
  }
}

/**
 * Decodes HF `pack_weights` U8 data (shape [rows/4, cols]) into a logical [rows, cols] matrix.
 * Byte [p, c] holds rows p, p+P, p+2P, p+3P (P = rows/4) in bits 1:0, 3:2, 5:4, 7:6.
 */
export function decodeHfPacked(packed: Uint8Array, rows: number, cols: number, where: TensorLocation): Int8Array {
  checkShape(rows, cols, where);
  if (rows % 4 !== 0) fail(where, `HF packing needs rows divisible by 4, got ${rows}`);
  checkLength(packed, (rows / 4) * cols, 'HF packed', where);
  const planeRows = rows / 4;
  const planeSize = planeRows * cols;
  const values = new Int8Array(rows * cols);
  for (let i = 0; i < planeSize; i++) {
    const byte = packed[i];
    for (let plane = 0; plane < 4; plane++) {
      const code = (byte >> (2 * plane)) & 3;
      if (code === INVALID_CODE) invalidCode(where, 'HF packed', plane * planeSize + i);
      values[plane * planeSize + i] = code - 1;
    }
  }
  return values;
}

/** Encodes a logical [rows, cols] ternary matrix with HF `pack_weights` (rows divisible by 4). */
export function encodeHfPacked(values: Int8Array, rows: number, cols: number, where: TensorLocation): Uint8Array {
  checkShape(rows, cols, where);
  if (rows % 4 !== 0) fail(where, `HF packing needs rows divisible by 4, got ${rows}`);
  if (values.length !== rows * cols) fail(where, `${values.length} values for shape [${rows}, ${cols}]`);
  checkTernary(values, where);
  const planeSize = (rows / 4) * cols;
  const packed = new Uint8Array(planeSize);
  for (let i = 0; i < planeSize; i++) {
    packed[i] = (values[i] + 1) | ((values[planeSize + i] + 1) << 2) | ((values[2 * planeSize + i] + 1) << 4) | ((values[3 * planeSize + i] + 1) << 6);
  }
  return packed;
}

/**
 * Absmean ternarization of full-precision master weights (reference 2.1):
 * β = max(mean|W|, 1e-5) rounded to f32, Wt = clamp(round(W · fround(1/β)), -1, 1) with
 * round-half-even. The sum is accumulated in f64, so β can differ from torch's f32 pairwise
 * mean by an ulp; the ternary matrix is unaffected except for elements within an ulp of ±β/2.
 */
export function ternarizeAbsmean(weights: Float32Array, rows: number, cols: number, where: TensorLocation): TernaryMatrix {
  checkShape(rows, cols, where);
  if (weights.length !== rows * cols) fail(where, `${weights.length} weights for shape [${rows}, ${cols}]`);
  let sum = 0;
  for (let i = 0; i < weights.length; i++) {
    const w = weights[i];
    if (!isFiniteNumber(w)) fail(where, `weight ${w} at element ${i} is not finite`);
    sum += abs(w);
  }
  const scale = fround(max(sum / weights.length, 1e-5));
  const inverse = fround(1 / scale);
  const values = new Int8Array(weights.length);
  for (let i = 0; i < weights.length; i++) {
    const x = fround(weights[i] * inverse);
    // Only |x| vs 0.5 and 1.5 matters after the clamp; ties at ±0.5 round to 0 (half to even).
    values[i] = x > 0.5 ? 1 : x < -0.5 ? -1 : 0;
  }
  return { rows, cols, values, scale };
}

/** Byte length of an I2_S tensor: 2 bits per weight plus the 32-byte scale tail. */
export function i2sByteLength(rows: number, cols: number): number {
  return (rows * cols) / 4 + 32;
}

/**
 * Decodes bitnet.cpp I2_S (reference 3c): the flat row-major stream in 128-element blocks of
 * 32 bytes, byte j holding elements j, j+32, j+64, j+96 in bits 7:6, 5:4, 3:2, 1:0; β is the
 * first f32 of the 32-byte tail.
 */
export function decodeI2S(bytes: Uint8Array, rows: number, cols: number, where: TensorLocation): TernaryMatrix {
  checkShape(rows, cols, where);
  const count = rows * cols;
  if (count % 128 !== 0) fail(where, `I2_S needs rows*cols divisible by 128, got ${count}`);
  checkLength(bytes, i2sByteLength(rows, cols), 'I2_S', where);
  const values = new Int8Array(count);
  for (let block = 0; block < count / 128; block++) {
    const base = block * 128;
    for (let j = 0; j < 32; j++) {
      const byte = bytes[block * 32 + j];
      for (let quarter = 0; quarter < 4; quarter++) {
        const code = (byte >> (6 - 2 * quarter)) & 3;
        const element = base + quarter * 32 + j;
        if (code === INVALID_CODE) invalidCode(where, 'I2_S', element);
        values[element] = code - 1;
      }
    }
  }
  const scale = new DataView(bytes.buffer, bytes.byteOffset + count / 4, 4).getFloat32(0, true);
  checkScale(scale, where);
  return { rows, cols, values, scale };
}

/** Encodes I2_S as bitnet.cpp's Python converter does: packed codes, f32 β, zero padding. */
export function encodeI2S(m: TernaryMatrix, where: TensorLocation): Uint8Array {
  const count = m.rows * m.cols;
  if (count % 128 !== 0) fail(where, `I2_S needs rows*cols divisible by 128, got ${count}`);
  checkTernary(m.values, where);
  const bytes = new Uint8Array(i2sByteLength(m.rows, m.cols));
  for (let block = 0; block < count / 128; block++) {
    const base = block * 128;
    for (let j = 0; j < 32; j++) {
      const v = m.values;
      bytes[block * 32 + j] = ((v[base + j] + 1) << 6) | ((v[base + 32 + j] + 1) << 4) | ((v[base + 64 + j] + 1) << 2) | (v[base + 96 + j] + 1);
    }
  }
  new DataView(bytes.buffer).setFloat32(count / 4, m.scale, true);
  return bytes;
}

const QK_K = 256;
/** Bytes per 256-element block. */
export const TQ2_0_BLOCK_BYTES = 66;
export const TQ1_0_BLOCK_BYTES = 54;

/**
 * Collects per-block f16 scales: for BitNet weights every block that holds a non-zero weight
 * has d = f16(β), and all-zero blocks have d = 0 (llama.cpp sets d to the block's absmax).
 * Returns the common β, or 0 when every block is zero.
 */
class BlockScales {
  private scaleBits = -1;
  private firstBlock = -1;

  constructor(private readonly where: TensorLocation) {}

  /** Registers block `index` with f16 bits `bits`; returns false when the block is all zero. */
  add(bits: number, index: number): boolean {
    const d = f16ToF32(bits);
    if (!isFiniteNumber(d) || d < 0) fail(this.where, `block ${index} has scale d = ${d}, not a finite non-negative number`);
    if (d === 0) return false;
    if (this.scaleBits === -1) {
      this.scaleBits = bits;
      this.firstBlock = index;
    } else if (bits !== this.scaleBits) {
      fail(this.where, `block ${index} has scale ${d} but block ${this.firstBlock} has ${f16ToF32(this.scaleBits)}: not a per-tensor ternary weight`);
    }
    return true;
  }

  get scale(): number {
    return this.scaleBits === -1 ? 0 : f16ToF32(this.scaleBits);
  }
}

function checkTqShape(rows: number, cols: number, format: string, where: TensorLocation): void {
  checkShape(rows, cols, where);
  if (cols % QK_K !== 0) fail(where, `${format} needs columns (ne0) divisible by ${QK_K}, got ${cols}`);
}

/** d for an encoded block: f16(β) when it holds a non-zero weight, else 0 (as llama.cpp writes). */
function blockScaleBits(values: Int8Array, base: number, scale: number): number {
  for (let i = 0; i < QK_K; i++) if (values[base + i] !== 0) return f32ToF16(scale);
  return 0;
}

/**
 * Decodes llama.cpp TQ2_0 (reference 3e): 66-byte blocks of qs[64] then f16 d; byte m of half h
 * holds elements 128h+m+32n in bits 2n+1:2n (LSB first).
 */
export function decodeTQ2_0(bytes: Uint8Array, rows: number, cols: number, where: TensorLocation): TernaryMatrix {
  checkTqShape(rows, cols, 'TQ2_0', where);
  const blocks = (rows * cols) / QK_K;
  checkLength(bytes, blocks * TQ2_0_BLOCK_BYTES, 'TQ2_0', where);
  const values = new Int8Array(rows * cols);
  const scales = new BlockScales(where);
  for (let block = 0; block < blocks; block++) {
    const at = block * TQ2_0_BLOCK_BYTES;
    const nonZero = scales.add(bytes[at + 64] | (bytes[at + 65] << 8), block);
    const base = block * QK_K;
    for (let half = 0; half < 2; half++) {
      for (let m = 0; m < 32; m++) {
        const byte = bytes[at + 32 * half + m];
        for (let n = 0; n < 4; n++) {
          const code = (byte >> (2 * n)) & 3;
          const element = base + 128 * half + 32 * n + m;
          if (code === INVALID_CODE) invalidCode(where, 'TQ2_0', element);
          values[element] = nonZero ? code - 1 : 0;
        }
      }
    }
  }
  return { rows, cols, values, scale: scales.scale };
}

/** Encodes TQ2_0 exactly as llama.cpp quantizes β·Wt. */
export function encodeTQ2_0(m: TernaryMatrix, where: TensorLocation): Uint8Array {
  checkTqShape(m.rows, m.cols, 'TQ2_0', where);
  checkTernary(m.values, where);
  const blocks = (m.rows * m.cols) / QK_K;
  const bytes = new Uint8Array(blocks * TQ2_0_BLOCK_BYTES);
  for (let block = 0; block < blocks; block++) {
    const at = block * TQ2_0_BLOCK_BYTES;
    const base = block * QK_K;
    const bits = blockScaleBits(m.values, base, m.scale);
    for (let half = 0; half < 2; half++) {
      for (let j = 0; j < 32; j++) {
        let byte = 0;
        for (let n = 0; n < 4; n++) byte |= (m.values[base + 128 * half + 32 * n + j] + 1) << (2 * n);
        bytes[at + 32 * half + j] = byte;
      }
    }
    bytes[at + 64] = bits & 0xff;
    bytes[at + 65] = bits >> 8;
  }
  return bytes;
}

const POW3 = [1, 3, 9, 27, 81];

/** Packs up to 5 trits (each 0..2, most significant first) into one TQ1_0 byte. */
export function tq1PackByte(trits: readonly number[]): number {
  let v = 0;
  for (let n = 0; n < 5; n++) v = v * 3 + (trits[n] ?? 0);
  return floor((v * 256 + 242) / 243);
}

/** Trit n (0 = most significant) of a TQ1_0 byte, by llama.cpp's division-free decode. */
export function tq1Trit(byte: number, n: number): number {
  const z = (byte * POW3[n]) & 0xff;
  return (z * 3) >> 8;
}

/** The element each trit of a TQ1_0 block lands on: [byte index, trit n, element]. */
const TQ1_LAYOUT: readonly (readonly [number, number, number])[] = (() => {
  const layout: [number, number, number][] = [];
  for (let n = 0; n < 5; n++) for (let m = 0; m < 32; m++) layout.push([m, n, m + 32 * n]);
  for (let n = 0; n < 5; n++) for (let m = 0; m < 16; m++) layout.push([32 + m, n, 160 + m + 16 * n]);
  for (let n = 0; n < 4; n++) for (let j = 0; j < 4; j++) layout.push([48 + j, n, 240 + j + 4 * n]);
  return layout;
})();

/**
 * Decodes llama.cpp TQ1_0 (reference 3e): 54-byte blocks of qs[48], qh[4], f16 d, five trits per
 * byte in base 3 with the ceil(v·256/243) pre-scaling (qh bytes hold four).
 */
export function decodeTQ1_0(bytes: Uint8Array, rows: number, cols: number, where: TensorLocation): TernaryMatrix {
  checkTqShape(rows, cols, 'TQ1_0', where);
  const blocks = (rows * cols) / QK_K;
  checkLength(bytes, blocks * TQ1_0_BLOCK_BYTES, 'TQ1_0', where);
  const values = new Int8Array(rows * cols);
  const scales = new BlockScales(where);
  for (let block = 0; block < blocks; block++) {
    const at = block * TQ1_0_BLOCK_BYTES;
    if (!scales.add(bytes[at + 52] | (bytes[at + 53] << 8), block)) continue;
    const base = block * QK_K;
    for (const [byteIndex, n, element] of TQ1_LAYOUT) values[base + element] = tq1Trit(bytes[at + byteIndex], n) - 1;
  }
  return { rows, cols, values, scale: scales.scale };
}

/** Encodes TQ1_0 exactly as llama.cpp quantizes β·Wt. */
export function encodeTQ1_0(m: TernaryMatrix, where: TensorLocation): Uint8Array {
  checkTqShape(m.rows, m.cols, 'TQ1_0', where);
  checkTernary(m.values, where);
  const blocks = (m.rows * m.cols) / QK_K;
  const bytes = new Uint8Array(blocks * TQ1_0_BLOCK_BYTES);
  const trits = Array.from({ length: 52 }, () => [0, 0, 0, 0, 0]);
  for (let block = 0; block < blocks; block++) {
    const at = block * TQ1_0_BLOCK_BYTES;
    const base = block * QK_K;
    for (const [byteIndex, n, element] of TQ1_LAYOUT) trits[byteIndex][n] = m.values[base + element] + 1;
    for (let i = 0; i < 52; i++) bytes[at + i] = tq1PackByte(trits[i]);
    const bits = blockScaleBits(m.values, base, m.scale);
    bytes[at + 52] = bits & 0xff;
    bytes[at + 53] = bits >> 8;
  }
  return bytes;
}
