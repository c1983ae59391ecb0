import { ModelFileError } from '../src/formats/errors';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from '../src/formats/float16';
import {
  betaFromWeightScale,
  decodeHfPacked,
  decodeI2S,
  decodeTQ1_0,
  decodeTQ2_0,
  encodeHfPacked,
  encodeI2S,
  encodeTQ1_0,
  encodeTQ2_0,
  i2sByteLength,
  TernaryMatrix,
  ternarizeAbsmean,
  tq1PackByte,
  tq1Trit,
} from '../src/formats/ternary-codecs';
import { Prng } from '../src/synth/prng';
import { modelFileError } from './helpers/model-files';

const where = { file: 'test.bin', tensor: 'blk.0.attn_q.weight' };

function randomTernary(rows: number, cols: number, seed: number, scale = 1.25): TernaryMatrix {
  const rng = new Prng(seed);
  const values = new Int8Array(rows * cols);
  for (let i = 0; i < values.length; i++) values[i] = rng.int(-1, 1);
  return { rows, cols, values, scale };
}

describe('16-bit floats', () => {
  test('f16 -> f32 -> f16 is the identity on every non-NaN bit pattern', () => {
    const mismatches: number[] = [];
    for (let bits = 0; bits < 0x10000; bits++) {
      const value = f16ToF32(bits);
      if (!Number.isNaN(value) && f32ToF16(value) !== bits) mismatches.push(bits);
    }
    expect(mismatches).toEqual([]);
  });

  test('f16 and bf16 round ties to even, and known values decode exactly', () => {
    expect(f16ToF32(0x3c00)).toBe(1);
    expect(f16ToF32(0xc000)).toBe(-2);
    expect(f16ToF32(0x0001)).toBe(2 ** -24);
    expect(f16ToF32(0x7bff)).toBe(65504);
    expect(f32ToF16(1 + 2 ** -11)).toBe(0x3c00);
    expect(f32ToF16(1 + 3 * 2 ** -11)).toBe(0x3c02);
    expect(f32ToF16(65520)).toBe(0x7c00);
    expect(f32ToBf16(1 + 2 ** -8)).toBe(0x3f80);
    expect(f32ToBf16(1 + 3 * 2 ** -8)).toBe(0x3f82);
    expect(bf16ToF32(0x3fc7)).toBe(1.5546875);
    expect(Number.isNaN(bf16ToF32(f32ToBf16(NaN)))).toBe(true);
  });
});

describe('HF pack_weights (reference 3a)', () => {
  test('0x92 decodes to +1, -1, 0, +1 in rows p, p+P, p+2P, p+3P', () => {
    expect(Array.from(decodeHfPacked(Uint8Array.of(0x92), 4, 1, where))).toEqual([1, -1, 0, 1]);
    // Two columns, P = 2: byte [p, c] lands at rows p + kP of column c.
    const packed = Uint8Array.of(0x92, 0x55, 0x55, 0x55);
    const values = decodeHfPacked(packed, 8, 2, where);
    expect(values[0 * 2 + 0]).toBe(1);
    expect(values[2 * 2 + 0]).toBe(-1);
    expect(values[4 * 2 + 0]).toBe(0);
    expect(values[6 * 2 + 0]).toBe(1);
    expect(Array.from(values).filter((v) => v !== 0)).toEqual([1, -1, 1]);
  });

  test('encode/decode round trip and code 3 is rejected', () => {
    const m = randomTernary(12, 40, 3);
    const packed = encodeHfPacked(m.values, m.rows, m.cols, where);
    expect(packed.length).toBe(3 * 40);
    expect(decodeHfPacked(packed, m.rows, m.cols, where)).toEqual(m.values);
    packed[7] |= 0x30;
    expect(modelFileError(() => decodeHfPacked(packed, m.rows, m.cols, where)).message).toMatch(/blk\.0\.attn_q\.weight.*code 3/);
  });

  test('weight_scale multiplies for autobitlinear and divides for bitlinear; bad scales are named', () => {
    expect(betaFromWeightScale(1.5546875, 'multiply', where)).toBe(1.5546875);
    expect(betaFromWeightScale(4, 'divide', where)).toBe(0.25);
    for (const bad of [NaN, Infinity, -1, 0]) {
      const error = modelFileError(() => betaFromWeightScale(bad, 'multiply', where));
      expect(error.tensor).toBe(where.tensor);
      expect(error.file).toBe(where.file);
    }
  });
});

describe('absmean ternarization (reference 2.1)', () => {
  test('known answer', () => {
    const m = ternarizeAbsmean(Float32Array.of(0.2, -0.9, 1.6, 0.05), 2, 2, where);
    expect(m.scale).toBe(Math.fround(0.6875));
    expect(Array.from(m.values)).toEqual([0, -1, 1, 0]);
  });

  test('ties at ±0.5 round to 0 (half to even), large values clamp to ±1', () => {
    const m = ternarizeAbsmean(Float32Array.of(0.5, -0.5, 1.5, -1.5), 1, 4, where);
    expect(m.scale).toBe(1);
    expect(Array.from(m.values)).toEqual([0, 0, 1, -1]);
  });

  test('all-zero weights clamp β to 1e-5; NaN weights are rejected', () => {
    expect(ternarizeAbsmean(new Float32Array(4), 2, 2, where).scale).toBe(Math.fround(1e-5));
    expect(modelFileError(() => ternarizeAbsmean(Float32Array.of(1, NaN), 1, 2, where)).message).toMatch(/not finite/);
  });
});

describe('I2_S (reference 3c)', () => {
  test('0x92 at byte j decodes to j:+1, j+32:0, j+64:-1, j+96:+1 and β is the first tail float', () => {
    const bytes = new Uint8Array(i2sByteLength(1, 128)).fill(0x55, 0, 32);
    bytes[5] = 0x92;
    new DataView(bytes.buffer).setFloat32(32, 1.75, true);
    const m = decodeI2S(bytes, 1, 128, where);
    expect(m.scale).toBe(1.75);
    expect([m.values[5], m.values[37], m.values[69], m.values[101]]).toEqual([1, 0, -1, 1]);
    expect(Array.from(m.values).filter((v) => v !== 0).length).toBe(3);
  });

  test('round trip, size, and NaN/Inf scale and code 3 rejected', () => {
    const m = randomTernary(6, 256, 5, 0.8125);
    const bytes = encodeI2S(m, where);
    expect(bytes.length).toBe((6 * 256) / 4 + 32);
    expect(decodeI2S(bytes, 6, 256, where)).toEqual(m);
    for (const bad of [NaN, Infinity, -0.5]) {
      const copy = bytes.slice();
      new DataView(copy.buffer).setFloat32(384, bad, true);
      expect(modelFileError(() => decodeI2S(copy, 6, 256, where)).message).toMatch(/scale/);
    }
    const copy = bytes.slice();
    copy[0] = 0xff;
    expect(modelFileError(() => decodeI2S(copy, 6, 256, where)).message).toMatch(/code 3/);
    expect(modelFileError(() => decodeI2S(bytes.subarray(1), 6, 256, where)).message).toMatch(/bytes, expected/);
  });
});

describe('TQ2_0 (reference 3e)', () => {
  test('0x92 at byte m decodes to m:+1, m+32:-1, m+64:0, m+96:+1; d is f16 at bytes 64..65', () => {
    const bytes = new Uint8Array(66).fill(0x55, 0, 64);
    bytes[32 + 3] = 0x92;
    bytes[64] = 0x00;
    bytes[65] = 0x3e; // f16 1.5
    const m = decodeTQ2_0(bytes, 1, 256, where);
    expect(m.scale).toBe(1.5);
    expect([m.values[131], m.values[163], m.values[195], m.values[227]]).toEqual([1, -1, 0, 1]);
    expect(Array.from(m.values).filter((v) => v !== 0).length).toBe(3);
  });

  test('round trip; all-zero blocks carry d = 0; differing d is not per-tensor ternary', () => {
    const m = randomTernary(3, 512, 9, 1.5);
    m.values.fill(0, 256, 512);
    const bytes = encodeTQ2_0(m, where);
    expect(bytes.length).toBe(6 * 66);
    expect(bytes[66 + 64] | bytes[66 + 65]).toBe(0);
    expect(decodeTQ2_0(bytes, 3, 512, where)).toEqual(m);
    bytes[4 * 66 + 64] ^= 1;
    expect(modelFileError(() => decodeTQ2_0(bytes, 3, 512, where)).message).toMatch(/block 4 has scale .* block 0 has 1\.5/);
  });

  test('rows must be a multiple of 256', () => {
    expect(modelFileError(() => encodeTQ2_0(randomTernary(2, 128, 1), where)).message).toMatch(/divisible by 256/);
  });
});

describe('TQ1_0 (reference 3e)', () => {
  test('base-3 byte packing decodes exactly for all 243 trit combinations', () => {
    const seen = new Set<number>();
    for (let v = 0; v < 243; v++) {
      const trits = [4, 3, 2, 1, 0].map((p) => Math.floor(v / 3 ** p) % 3);
      const byte = tq1PackByte(trits);
      expect(byte).toBe(Math.floor((v * 256 + 242) / 243));
      expect([0, 1, 2, 3, 4].map((n) => tq1Trit(byte, n))).toEqual(trits);
      seen.add(byte);
    }
    expect(seen.size).toBe(243);
  });

  test('element positions: qs[32+m] holds 160+m+16n, qh[j] holds 240+j+4n', () => {
    const m: TernaryMatrix = { rows: 1, cols: 256, values: new Int8Array(256), scale: 2 };
    m.values[160 + 1 + 16 * 2] = 1;
    m.values[240 + 3 + 4 * 1] = -1;
    const bytes = encodeTQ1_0(m, where);
    expect(bytes.length).toBe(54);
    expect(tq1Trit(bytes[33], 2)).toBe(2);
    expect(tq1Trit(bytes[51], 1)).toBe(0);
    expect(bytes[52] | (bytes[53] << 8)).toBe(0x4000);
    expect(decodeTQ1_0(bytes, 1, 256, where)).toEqual(m);
  });

  test('round trip on a random matrix', () => {
    const m = randomTernary(4, 768, 11, 0.5);
    expect(decodeTQ1_0(encodeTQ1_0(m, where), 4, 768, where)).toEqual(m);
  });

  test('errors are ModelFileErrors naming the file and tensor', () => {
    const error = modelFileError(() => decodeTQ1_0(new Uint8Array(53), 1, 256, where));
    expect(error).toBeInstanceOf(ModelFileError);
    expect(error.message).toContain('test.bin');
    expect(error.message).toContain('blk.0.attn_q.weight');
  });
});
