import * as fs from 'fs';
import * as path from 'path';
import { GgmlType, ggmlTensorBytes, GgufFile, GgufValue, GgufValueType, writeGguf } from '../src/formats/gguf';
import { modelFileError, rawGguf, RawBytes, scratchDir, writeFile } from './helpers/model-files';

const dir = scratchDir('gguf');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const everyType: [string, GgufValue][] = [
  ['general.architecture', { type: GgufValueType.STRING, value: 'bitnet-b1.58' }],
  ['t.u8', { type: GgufValueType.U8, value: 250 }],
  ['t.i8', { type: GgufValueType.I8, value: -100 }],
  ['t.u16', { type: GgufValueType.U16, value: 65000 }],
  ['t.i16', { type: GgufValueType.I16, value: -30000 }],
  ['t.u32', { type: GgufValueType.U32, value: 4_000_000_000 }],
  ['t.i32', { type: GgufValueType.I32, value: -2_000_000_000 }],
  ['t.f32', { type: GgufValueType.F32, value: 1.5 }],
  ['t.bool', { type: GgufValueType.BOOL, value: true }],
  ['t.string', { type: GgufValueType.STRING, value: 'Ġhello ✓' }],
  ['t.u64', { type: GgufValueType.U64, value: 2n ** 63n + 5n }],
  ['t.i64', { type: GgufValueType.I64, value: -(2n ** 62n) }],
  ['t.f64', { type: GgufValueType.F64, value: Math.PI }],
  ['t.strings', { type: GgufValueType.ARRAY, elementType: GgufValueType.STRING, value: ['a', 'Ġ Ġ', ''] }],
  ['t.i32s', { type: GgufValueType.ARRAY, elementType: GgufValueType.I32, value: [1, -3] }],
  [
    't.nested',
    {
      type: GgufValueType.ARRAY,
      elementType: GgufValueType.ARRAY,
      value: [
        { type: GgufValueType.ARRAY, elementType: GgufValueType.U8, value: [1, 2] },
        { type: GgufValueType.ARRAY, elementType: GgufValueType.F32, value: [0.25] },
      ],
    },
  ],
];

const i2sBytes = new Uint8Array((256 * 2) / 4 + 32).fill(0x55);
const norm = new Uint8Array(Float32Array.of(1, 2, 3, 4, 5, 6, 7, 8).buffer);

function writeSample(file: string, alignment = 32): string {
  writeGguf(
    file,
    everyType,
    [
      { name: 'blk.0.attn_q.weight', dims: [256, 2], type: GgmlType.I2_S, bytes: () => i2sBytes },
      { name: 'output_norm.weight', dims: [8], type: GgmlType.F32, bytes: () => norm },
    ],
    alignment,
  );
  return file;
}

test('every metadata type, nested arrays and tensors round-trip through writer and reader', () => {
  const gguf = GgufFile.open(writeSample(path.join(dir, 'sample.gguf')));
  expect(gguf.version).toBe(3);
  expect(gguf.alignment).toBe(32);
  for (const [key, value] of everyType) expect(gguf.metadata.get(key)).toEqual(value);
  expect(gguf.architecture).toBe('bitnet-b1.58');
  const q = gguf.tensors.get('blk.0.attn_q.weight')!;
  expect(q).toMatchObject({ dims: [256, 2], typeName: 'I2_S', byteLength: 160, elementCount: 512 });
  expect((q.offset - gguf.dataStart) % 32).toBe(0);
  expect(gguf.read('blk.0.attn_q.weight')).toEqual(i2sBytes);
  expect(gguf.read('output_norm.weight')).toEqual(norm);
  gguf.close();
});

test('version 2 files are read like version 3', () => {
  const bytes = fs.readFileSync(writeSample(path.join(dir, 'v3.gguf')));
  bytes.writeUInt32LE(2, 4);
  const gguf = GgufFile.open(writeFile(dir, 'v2.gguf', bytes));
  expect(gguf.version).toBe(2);
  expect(gguf.read('output_norm.weight')).toEqual(norm);
  gguf.close();
});

test('general.alignment is honoured', () => {
  const gguf = GgufFile.open(writeSample(path.join(dir, 'aligned.gguf'), 64));
  expect(gguf.alignment).toBe(64);
  for (const t of gguf.tensors.values()) expect((t.offset - gguf.dataStart) % 64).toBe(0);
  expect(gguf.read('output_norm.weight')).toEqual(norm);
  gguf.close();
});

test('byte sizes per type', () => {
  expect(ggmlTensorBytes(GgmlType.I2_S, [2560n, 2560n], 'bitnet-b1.58')).toBe(2560n * 640n + 32n);
  expect(ggmlTensorBytes(GgmlType.TQ1_0, [2560n, 6912n], 'bitnet')).toBe(((2560n * 6912n) / 256n) * 54n);
  expect(ggmlTensorBytes(GgmlType.TQ2_0, [6912n, 2560n], 'bitnet')).toBe(((2560n * 6912n) / 256n) * 66n);
  expect(ggmlTensorBytes(GgmlType.F16, [2560n, 128256n], 'bitnet')).toBe(2560n * 128256n * 2n);
  expect(ggmlTensorBytes(GgmlType.BF16, [3n], 'bitnet')).toBe(6n);
  expect(ggmlTensorBytes(GgmlType.Q8_0, [64n, 2n], 'bitnet')).toBe(4n * 34n);
  expect(ggmlTensorBytes(GgmlType.Q6_K, [2560n, 128256n], 'bitnet')).toBe(10n * 128256n * 210n);
  expect(ggmlTensorBytes(GgmlType.TQ2_0, [128n, 2n], 'bitnet')).toMatch(/multiple of 256/);
  expect(ggmlTensorBytes(GgmlType.I2_S, [100n], 'bitnet-25')).toMatch(/multiple of 128/);
  // Type 39 is TL2 in bitnet.cpp files but MXFP4 upstream.
  expect(ggmlTensorBytes(39, [64n], 'bitnet-25')).toMatch(/TL2 .*convert the model to I2_S/);
  expect(ggmlTensorBytes(39, [64n], 'bitnet')).toBe(34n);
});

test('the official 2B4T I2_S layout adds up to the 1124.81 MiB reported by bitnet.cpp', () => {
  const layer = [
    [2560n, 2560n],
    [2560n, 640n],
    [2560n, 640n],
    [2560n, 2560n],
    [2560n, 6912n],
    [2560n, 6912n],
    [6912n, 2560n],
  ].reduce((sum, dims) => sum + (ggmlTensorBytes(GgmlType.I2_S, dims, 'bitnet-b1.58') as bigint), 0n);
  const norms = (2560n * 3n + 6912n) * 4n;
  const total = 30n * (layer + norms) + 2560n * 128256n * 2n + 2560n * 4n;
  expect(total).toBe(1_179_449_920n);
});

describe('hostile files', () => {
  const data = new Uint8Array(64);
  const cases: [string, () => Buffer, RegExp][] = [
    ['wrong magic', () => Buffer.concat([Buffer.from('GGUX'), rawGguf([], data).subarray(4)]), /magic: bad magic 47475558/],
    ['version 1', () => new RawBytes().push(Buffer.from('GGUF')).u32(1).u64(0).u64(0).build(), /unsupported GGUF version 1/],
    ['big-endian', () => new RawBytes().push(Buffer.from('GGUF')).u32(0x03000000).u64(0).u64(0).build(), /big-endian/],
    ['tensor count beyond the file', () => new RawBytes().push(Buffer.from('GGUF')).u32(3).u64(2n ** 40n).u64(0).build(), /tensor_count 1099511627776 cannot fit/],
    ['string longer than the file', () => new RawBytes().push(Buffer.from('GGUF')).u32(3).u64(0).u64(1).u64(2n ** 63n).push(new Uint8Array(16)).build(), /key length 9223372036854775808 exceeds/],
    ['unknown value type', () => new RawBytes().push(Buffer.from('GGUF')).u32(3).u64(0).u64(1).str('k').u32(13).build(), /metadata 'k': unknown metadata value type 13/],
    ['array count beyond the file', () => new RawBytes().push(Buffer.from('GGUF')).u32(3).u64(0).u64(1).str('k').u32(9).u32(8).u64(2n ** 62n).build(), /array length .* cannot fit/],
    ['bad bool', () => new RawBytes().push(Buffer.from('GGUF')).u32(3).u64(0).u64(1).str('k').u32(7).push(Uint8Array.of(2)).build(), /bool value 2/],
    ['bad alignment', () => new RawBytes().push(Buffer.from('GGUF')).u32(3).u64(0).u64(1).str('general.alignment').u32(4).u32(12).build(), /general\.alignment 12 is not a positive multiple of 8/],
    ['too many dims', () => rawGguf([{ name: 't', dims: [1, 1, 1, 1, 1], type: 0, offset: 0 }], data), /tensor 't': n_dims 5 outside 1\.\.4/],
    ['over-long name', () => rawGguf([{ name: 'x'.repeat(65), dims: [1], type: 0, offset: 0 }], data), /tensor name length 65 exceeds the limit of 64/],
    ['offset past EOF', () => rawGguf([{ name: 't', dims: [8], type: 0, offset: 64 }], data), /tensor 't': F32 data \[\d+, \d+\) extends past the end/],
    ['unaligned offset', () => rawGguf([{ name: 't', dims: [4], type: 0, offset: 4 }], data), /tensor 't': offset 4 is not a multiple of the alignment 32/],
    [
      'overlapping tensors',
      () => rawGguf([{ name: 'a', dims: [16], type: 0, offset: 0 }, { name: 'b', dims: [4], type: 0, offset: 32 }], data),
      /tensor 'b': bytes overlap tensor 'a'/,
    ],
    ['element count overflowing 64 bits', () => rawGguf([{ name: 't', dims: [2n ** 40n, 2n ** 40n], type: 0, offset: 0 }], data), /tensor 't': element count .* exceeds/],
    ['unknown tensor type', () => rawGguf([{ name: 't', dims: [4], type: 77, offset: 0 }], data), /tensor 't': unsupported ggml type 77/],
    ['TL1 tensor', () => rawGguf([{ name: 't', dims: [4], type: 38, offset: 0 }], data, 'bitnet-b1.58'), /tensor 't': type TL1 \(38\) is a bitnet\.cpp lookup-table format/],
    ['duplicate tensor', () => rawGguf([{ name: 'a', dims: [4], type: 0, offset: 0 }, { name: 'a', dims: [4], type: 0, offset: 32 }], data), /tensor 'a': duplicate tensor name/],
  ];
  test.each(cases)('%s is a clean error naming the file', (label, build, pattern) => {
    const file = writeFile(dir, `hostile-${label.replace(/\W+/g, '-')}.gguf`, build());
    const error = modelFileError(() => GgufFile.open(file));
    expect(error.file).toBe(file);
    expect(error.message).toMatch(pattern);
  });

  test('every truncation of a valid file is a clean error', () => {
    const bytes = fs.readFileSync(writeSample(path.join(dir, 'whole.gguf')));
    for (let length = 0; length < bytes.length; length++) {
      const file = writeFile(dir, 'cut.gguf', bytes.subarray(0, length));
      expect(modelFileError(() => GgufFile.open(file)).file).toBe(file);
    }
  });
});
