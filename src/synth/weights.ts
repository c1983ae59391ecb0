/**
 * Deterministic synthetic weights. Each tensor is derived from (seed, tensor name) alone, so a
 * writer can regenerate any tensor on demand without holding the model in memory.
 *
 * Ternary tensors come with full-precision "master" weights chosen so that absmean
 * ternarization (reference 2.1) gives back exactly the same matrix and β: every |W| is an
 * integer multiple j of a power-of-two unit U, β = B·U with B in [64, 127], the j of zero
 * weights stay below 0.45·B and those of non-zero weights above 0.55·B, and Σj is nudged to
 * exactly n·B so that mean|W| = β with no rounding anywhere (j <= 255 keeps W exact in bf16).
 */
import { TensorSpec, elementCount } from '../model/architecture';
import { TernaryMatrix } from '../formats/ternary-codecs';
import { hashString, Prng } from './prng';

// Math/Number members are bound once: global lookups inside hot loops are slow in VM contexts (jest).
const { abs, ceil, floor, max, min, sign } = Math;

/** Fraction of zero weights (about what absmean gives for Gaussian master weights). */
const ZERO_FRACTION = 0.3;

/** A synthetic ternary tensor and the master weights that ternarize to it. */
export interface SyntheticTernary {
  matrix: TernaryMatrix;
  /** Master weights (exact in bf16) whose absmean ternarization is `matrix`. */
  master(): Float32Array;
}

function tensorPrng(seed: number, spec: TensorSpec): Prng {
  return new Prng(hashString(spec.hfName, seed >>> 0));
}

/** β = b·2^-unitExponent: the first two draws of the tensor's PRNG. */
function drawScale(rng: Prng): { b: number; unit: number } {
  const unitExponent = rng.int(6, 7);
  return { b: rng.int(64, 127), unit: 2 ** -unitExponent };
}

/** β of the ternary tensor `spec`, without generating the tensor. */
export function syntheticTernaryScale(spec: TensorSpec, seed: number): number {
  const { b, unit } = drawScale(tensorPrng(seed, spec));
  return b * unit;
}

/** The ternary tensor `spec` of the model with `seed`. */
export function syntheticTernary(spec: TensorSpec, seed: number): SyntheticTernary {
  const [rows, cols] = spec.shape;
  const n = rows * cols;
  const rng = tensorPrng(seed, spec);
  const { b, unit } = drawScale(rng);
  const zeroMax = floor(0.45 * b);
  const nonZeroMin = ceil(0.55 * b);
  const nonZeroMax = min(255, floor(2.2 * b));
  const values = new Int8Array(n);
  const multiples = new Uint8Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    if (rng.next() < ZERO_FRACTION) {
      multiples[i] = rng.int(0, zeroMax);
    } else {
      values[i] = rng.next() < 0.5 ? -1 : 1;
      multiples[i] = rng.int(nonZeroMin, nonZeroMax);
    }
    sum += multiples[i];
  }
  let deficit = n * b - sum;
  // Spread the correction evenly so no element is pushed to an extreme.
  for (let pass = 0; pass < 4 && deficit !== 0; pass++) {
    for (let i = 0; i < n && deficit !== 0; i++) {
      const [lo, hi] = values[i] === 0 ? [0, zeroMax] : [nonZeroMin, nonZeroMax];
      const want = sign(deficit) * max(1, ceil(abs(deficit) / (n - i)));
      const step = max(lo - multiples[i], min(hi - multiples[i], want));
      multiples[i] += step;
      deficit -= step;
    }
  }
  if (deficit !== 0) throw new Error(`syntheticTernary: cannot balance '${spec.hfName}' (deficit ${deficit})`);
  const scale = b * unit;
  return {
    matrix: { rows, cols, values, scale },
    master: () => {
      const master = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        const sign = values[i] !== 0 ? values[i] : (i & 1) === 0 ? 1 : -1;
        master[i] = sign * multiples[i] * unit;
      }
      return master;
    },
  };
}

/** Elements per chunk of a streamed float tensor (4 MiB of f32). */
const FLOAT_CHUNK_ELEMENTS = 1 << 20;

/**
 * The norm or embedding tensor `spec`, streamed in chunks so that a 2B4T-sized embedding never
 * sits in memory as f32: norms in [0.5, 2) on a 1/64 grid, embeddings in (-1, 1) on a 1/256
 * grid, so every value is exact in bf16, f16 and f32.
 */
export function* syntheticFloatChunks(spec: TensorSpec, seed: number): Generator<Float32Array> {
  const rng = tensorPrng(seed, spec);
  const total = elementCount(spec.shape);
  for (let start = 0; start < total; start += FLOAT_CHUNK_ELEMENTS) {
    const chunk = new Float32Array(min(FLOAT_CHUNK_ELEMENTS, total - start));
    if (spec.kind === 'norm') for (let i = 0; i < chunk.length; i++) chunk[i] = rng.int(32, 127) / 64;
    else for (let i = 0; i < chunk.length; i++) chunk[i] = rng.int(-255, 255) / 256;
    yield chunk;
  }
}

/** The whole norm or embedding tensor `spec` (see syntheticFloatChunks). */
export function syntheticFloat(spec: TensorSpec, seed: number): Float32Array {
  const out = new Float32Array(elementCount(spec.shape));
  let offset = 0;
  for (const chunk of syntheticFloatChunks(spec, seed)) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}
