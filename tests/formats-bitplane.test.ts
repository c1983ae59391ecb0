import * as fs from 'fs';
import * as path from 'path';
import { BitplaneTensorInput, packedPlaneBytes, readBitplaneHeader, TOKENIZER_BLOB, verifyBitplaneChecksums, writeBitplaneFile } from '../src/formats/bitplane-file';
import { modelTensors, presetConfig } from '../src/model/architecture';
import { Prng } from '../src/synth/prng';
import { BITNET_CHAT_TEMPLATE, syntheticTokenizerJson } from '../src/synth/tokenizer';
import { modelFileError, scratchDir, writeFile } from './helpers/model-files';

const dir = scratchDir('bitplane');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const config = presetConfig('tiny');

function randomBytes(length: number, seed: number): Uint8Array {
  const rng = new Prng(seed);
  return Uint8Array.from({ length }, () => rng.int(0, 255));
}

/** Plane bytes are opaque to the file format, so random bytes of the right size stand in for pack_ternary output. */
function inputs(): BitplaneTensorInput[] {
  const tensors: BitplaneTensorInput[] = modelTensors(config).map((spec, i) =>
    spec.kind === 'ternary'
      ? { name: spec.hfName, kind: 'ternary-planes', shape: spec.shape, scale: 1.25, bytes: () => randomBytes(packedPlaneBytes(spec.shape[0], spec.shape[1]), i) }
      : { name: spec.hfName, kind: 'f32', shape: spec.shape, bytes: () => randomBytes(spec.shape.reduce((a, b) => a * b, 4), i) },
  );
  tensors.push({ name: TOKENIZER_BLOB, kind: 'blob', shape: [], bytes: () => Buffer.from(JSON.stringify(syntheticTokenizerJson())) });
  return tensors;
}

const file = path.join(dir, 'tiny.bnp');
writeBitplaneFile(file, { config, chatTemplate: BITNET_CHAT_TEMPLATE }, inputs());

test('packed plane sizes pad rows to 64 and columns to 128', () => {
  expect(packedPlaneBytes(64, 256)).toBe((64 * 256) / 4);
  expect(packedPlaneBytes(2560, 6912)).toBe((2560 * 6912) / 4);
  expect(packedPlaneBytes(65, 129)).toBe((128 * 256) / 4);
});

test('header round trip: config, template, aligned tensors, checksums', () => {
  const header = readBitplaneHeader(file);
  expect(header.config).toEqual(config);
  expect(header.chatTemplate).toBe(BITNET_CHAT_TEMPLATE);
  expect(header.tensors.length).toBe(modelTensors(config).length + 1);
  for (const t of header.tensors) expect(t.offset % 64).toBe(0);
  const q = header.tensors.find((t) => t.name === 'model.layers.0.self_attn.k_proj.weight')!;
  expect(q).toMatchObject({ kind: 'ternary-planes', shape: [64, 256], scale: 1.25, byteLength: 4096 });
  const fd = fs.openSync(file, 'r');
  const bytes = Buffer.alloc(q.byteLength);
  fs.readSync(fd, bytes, 0, q.byteLength, q.offset);
  fs.closeSync(fd);
  const index = modelTensors(config).findIndex((s) => s.hfName === q.name);
  expect(bytes.equals(Buffer.from(randomBytes(4096, index)))).toBe(true);
  verifyBitplaneChecksums(header);
});

test('a flipped data byte fails the checksum, naming the tensor', () => {
  const bytes = fs.readFileSync(file);
  const header = readBitplaneHeader(file);
  const victim = header.tensors[5];
  bytes[victim.offset + 7] ^= 0x10;
  const corrupt = writeFile(dir, 'flipped.bnp', bytes);
  const error = modelFileError(() => verifyBitplaneChecksums(readBitplaneHeader(corrupt)));
  expect(error.tensor).toBe(victim.name);
  expect(error.message).toMatch(/checksum mismatch/);
});

test.each([
  ['bad magic', (b: Buffer) => b.write('XX', 0), /bad magic/],
  ['future version', (b: Buffer) => b.writeUInt32LE(2, 8), /unsupported bit-plane file version 2/],
  ['corrupt index', (b: Buffer) => (b[b.length - 3] ^= 1), /index checksum mismatch/],
  ['index offset past the end', (b: Buffer) => b.writeBigUInt64LE(2n ** 60n, 16), /does not end the .*-byte file/],
] as const)('%s is rejected', (label, edit, pattern) => {
  const bytes = fs.readFileSync(file);
  edit(bytes);
  expect(modelFileError(() => readBitplaneHeader(writeFile(dir, `${label.replace(/\W+/g, '-')}.bnp`, bytes))).message).toMatch(pattern);
});

test('truncations are clean errors', () => {
  const bytes = fs.readFileSync(file);
  for (const length of [0, 63, 64, 1000, bytes.length - 100, bytes.length - 1]) {
    modelFileError(() => readBitplaneHeader(writeFile(dir, 'cut.bnp', bytes.subarray(0, length))));
  }
});

test('the writer refuses wrongly sized planes and leaves no file behind', () => {
  const target = path.join(dir, 'refused.bnp');
  const bad = inputs();
  bad[2] = { ...bad[2], bytes: () => new Uint8Array(10) };
  expect(() => writeBitplaneFile(target, { config, chatTemplate: null }, bad)).toThrow(/is 10 bytes, expected/);
  expect(fs.readdirSync(dir).filter((f) => f.startsWith('refused'))).toEqual([]);
});

test('a missing tensor is named', () => {
  const target = path.join(dir, 'missing.bnp');
  writeBitplaneFile(target, { config, chatTemplate: null }, inputs().filter((t) => t.name !== 'model.norm.weight'));
  expect(modelFileError(() => readBitplaneHeader(target)).message).toMatch(/tensor 'model\.norm\.weight': tensor missing/);
});
