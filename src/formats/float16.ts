/**
 * Exact conversions between f32 and the 16-bit float formats found in model files.
 * f32 -> 16-bit conversions round to nearest, ties to even, as torch and ggml do.
 */

// Math/Number members are bound once: global lookups inside hot loops are slow in VM contexts (jest).
const { abs, floor, fround, log2 } = Math;

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** bf16 bits -> f32 value (exact: the bits become the high half of the f32). */
export function bf16ToF32(bits: number): number {
  u32Scratch[0] = (bits & 0xffff) << 16;
  return f32Scratch[0];
}

/** f32 value -> bf16 bits, round to nearest even; NaN stays NaN. */
export function f32ToBf16(value: number): number {
  f32Scratch[0] = value;
  const bits = u32Scratch[0];
  if ((bits & 0x7f800000) === 0x7f800000 && (bits & 0x007fffff) !== 0) return ((bits >>> 16) | 0x40) & 0xffff;
  const rounded = bits + 0x7fff + ((bits >>> 16) & 1);
  return (rounded >>> 16) & 0xffff;
}

/** IEEE binary16 bits -> f32 value (exact, subnormals included). */
export function f16ToF32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >>> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa === 0 ? sign * Infinity : NaN;
  return sign * (1024 + mantissa) * 2 ** (exponent - 25);
}

/** f32 value -> IEEE binary16 bits, round to nearest even, overflow to infinity. */
export function f32ToF16(value: number): number {
  const v = fround(value);
  if (v !== v) return 0x7e00;
  const sign = v < 0 || 1 / v === -Infinity ? 0x8000 : 0;
  const magnitude = abs(v);
  if (magnitude >= 65520) return sign | 0x7c00;
  if (magnitude < 2 ** -14) {
    // Subnormal range: the unit is 2^-24; Math.round-to-even by hand because JS rounds half up.
    return sign | roundHalfEven(magnitude * 2 ** 24);
  }
  const exponent = floor(log2(magnitude));
  const e = magnitude >= 2 ** (exponent + 1) ? exponent + 1 : magnitude < 2 ** exponent ? exponent - 1 : exponent;
  const scaled = roundHalfEven((magnitude / 2 ** e) * 1024);
  // Rounding can carry into the next binade (scaled === 2048); the bit arithmetic absorbs it.
  return sign | (((e + 15) << 10) + (scaled - 1024));
}

function roundHalfEven(x: number): number {
  const whole = floor(x);
  const fraction = x - whole;
  if (fraction > 0.5) return whole + 1;
  if (fraction < 0.5) return whole;
  return whole % 2 === 0 ? whole : whole + 1;
}

/** Decodes little-endian bf16 bytes into f32 values. */
export function bf16BytesToF32(bytes: Uint8Array): Float32Array {
  const out = new Float32Array(bytes.length >>> 1);
  const outBits = new Uint32Array(out.buffer);
  for (let i = 0; i < out.length; i++) outBits[i] = (bytes[2 * i] | (bytes[2 * i + 1] << 8)) << 16;
  return out;
}

/** Decodes little-endian f16 bytes into f32 values. */
export function f16BytesToF32(bytes: Uint8Array): Float32Array {
  const out = new Float32Array(bytes.length >>> 1);
  for (let i = 0; i < out.length; i++) out[i] = f16ToF32(bytes[2 * i] | (bytes[2 * i + 1] << 8));
  return out;
}

/** Decodes little-endian f32 bytes (any alignment) into f32 values. */
export function f32BytesToF32(bytes: Uint8Array): Float32Array {
  const out = new Float32Array(bytes.length >>> 2);
  new Uint8Array(out.buffer).set(bytes.subarray(0, out.length * 4));
  return out;
}

/** Encodes f32 values as little-endian bf16 bytes. */
export function f32ToBf16Bytes(values: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(values.length * 2);
  for (let i = 0; i < values.length; i++) {
    const bits = f32ToBf16(values[i]);
    out[2 * i] = bits & 0xff;
    out[2 * i + 1] = bits >>> 8;
  }
  return out;
}

/** Encodes f32 values as little-endian f16 bytes. */
export function f32ToF16Bytes(values: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(values.length * 2);
  for (let i = 0; i < values.length; i++) {
    const bits = f32ToF16(values[i]);
    out[2 * i] = bits & 0xff;
    out[2 * i + 1] = bits >>> 8;
  }
  return out;
}

/** Encodes f32 values as little-endian f32 bytes. */
export function f32ToF32Bytes(values: ArrayLike<number>): Uint8Array {
  return new Uint8Array(Float32Array.from(values).buffer);
}
